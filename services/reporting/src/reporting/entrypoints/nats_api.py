"""The reporting service's request/reply subjects: one route table, served and documented."""

from __future__ import annotations

from typing import Any

from shared.contracts.reporting import (
    AuditPage,
    AuditQuery,
    Balance,
    BalanceQuery,
    GenerateInvoice,
    GetInvoice,
    Invoice,
    InvoicePage,
    Lag,
    LagQuery,
    ListInvoices,
    ReportingSubjects,
    Summary,
    SummaryQuery,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from reporting.application.audit_queries import AuditQueries
from reporting.application.balance import BalanceQueries
from reporting.application.invoices import Invoices
from reporting.application.lag import LagQueries
from reporting.application.summaries import SummaryQueries

QUEUE = "reporting"


def routes(
    *, audit: AuditQueries, summaries: SummaryQueries, invoices: Invoices, balance: BalanceQueries,
    lag: LagQueries,
) -> list[Route]:
    """Every subject of the reporting API with its models and handler."""

    async def audit_page(body: AuditQuery) -> bytes:
        return (await audit.page(body)).model_dump_json().encode()

    async def summary(body: SummaryQuery) -> bytes:
        return (await summaries.summary(body)).model_dump_json(by_alias=True).encode()

    async def generate_invoice(body: GenerateInvoice) -> bytes:
        if body.meta.correlation_id is None:
            body.meta.correlation_id = current_correlation_id()
        return await invoices.generate(body)

    async def list_invoices(body: ListInvoices) -> bytes:
        return (await invoices.page(body)).model_dump_json().encode()

    async def get_invoice(body: GetInvoice) -> bytes:
        return (await invoices.get(str(body.invoice_id))).model_dump_json().encode()

    async def get_balance(body: BalanceQuery) -> bytes:
        return (await balance.balance(body.customer_id)).model_dump_json().encode()

    async def get_lag(_: LagQuery) -> bytes:
        return (await lag.lag()).model_dump_json().encode()

    return [
        Route(ReportingSubjects.AUDIT, AuditQuery, AuditPage, audit_page,
              "The audit log of a customer (or all, without customer_id), newest first."),
        Route(ReportingSubjects.SUMMARY, SummaryQuery, Summary, summary,
              "Call summary rows (live, daily, weekly, monthly; UTC) with weighted totals."),
        Route(ReportingSubjects.GENERATE_INVOICE, GenerateInvoice, Invoice, generate_invoice,
              "Invoice a date range or chosen days; a day invoiced before is a conflict."),
        Route(ReportingSubjects.INVOICES, ListInvoices, InvoicePage, list_invoices,
              "Invoices, newest first."),
        Route(ReportingSubjects.INVOICE, GetInvoice, Invoice, get_invoice, "One invoice."),
        Route(ReportingSubjects.BALANCE, BalanceQuery, Balance, get_balance,
              "Payments minus call charges, in the customer's currency."),
        Route(ReportingSubjects.LAG, LagQuery, Lag, get_lag, "Projection lag and rebuild progress."),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (`python -m shared.asyncapi`; handlers never called)."""
    unused: Any = None
    return routes(audit=unused, summaries=unused, invoices=unused, balance=unused, lag=unused)
