"""The reporting service's request/reply subjects: one route table, served and documented."""

from __future__ import annotations

import base64
from typing import Any

from shared.contracts.customer import CommandMeta
from shared.contracts.invoices import (
    CreditNote,
    CreditNotePage,
    GetInvoiceDocument,
    GetInvoiceSettings,
    InvoiceDocument,
    InvoiceSettings,
    InvoiceSubjects,
    IssueCreditNote,
    ListCreditNotes,
    SetInvoiceSettings,
    VoidInvoice,
)
from shared.contracts.reporting import (
    AuditPage,
    AuditQuery,
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
from reporting.application.invoice_changes import InvoiceChanges
from reporting.application.invoices import Invoices
from reporting.application.lag import LagQueries
from reporting.application.summaries import SummaryQueries
from reporting.documents.render import InvoiceRenderer

QUEUE = "reporting"


def routes(
    *, audit: AuditQueries, summaries: SummaryQueries, invoices: Invoices,
    lag: LagQueries, changes: InvoiceChanges, renderer: InvoiceRenderer,
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
        cid = str(body.customer_id) if body.customer_id else None
        return (await invoices.get(str(body.invoice_id), cid)).model_dump_json().encode()

    def _correlated(meta: CommandMeta) -> None:
        if meta.correlation_id is None:
            meta.correlation_id = current_correlation_id()

    async def invoice_document(body: GetInvoiceDocument) -> bytes:
        cid = str(body.customer_id) if body.customer_id else None
        invoice = await invoices.get(str(body.invoice_id), cid)
        name = f"{invoice.document_number}.{body.format}"
        if body.format == "pdf":
            content = base64.b64encode(renderer.pdf(invoice)).decode()
            document = InvoiceDocument(media_type="application/pdf", filename=name, content=content)
        else:
            document = InvoiceDocument(media_type="text/html; charset=utf-8", filename=name,
                                       content=renderer.html(invoice))
        return document.model_dump_json().encode()

    async def void_invoice(body: VoidInvoice) -> bytes:
        _correlated(body.meta)
        return await changes.void(body)

    async def credit_note(body: IssueCreditNote) -> bytes:
        _correlated(body.meta)
        return await changes.credit_note(body)

    async def credit_notes(body: ListCreditNotes) -> bytes:
        return (await changes.credit_notes(body)).model_dump_json().encode()

    async def get_settings(_: GetInvoiceSettings) -> bytes:
        return (await changes.settings()).model_dump_json().encode()

    async def set_settings(body: SetInvoiceSettings) -> bytes:
        _correlated(body.meta)
        return await changes.set_settings(body)

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
              "Invoices, newest first (of a customer, of some statuses)."),
        Route(ReportingSubjects.INVOICE, GetInvoice, Invoice, get_invoice,
              "One invoice (with customer_id: only if it is that customer's)."),
        Route(InvoiceSubjects.DOCUMENT, GetInvoiceDocument, InvoiceDocument, invoice_document,
              "An invoice as PDF (base64) or printable HTML, from the carrier's template."),
        Route(InvoiceSubjects.VOID, VoidInvoice, Invoice, void_invoice,
              "Void an invoice nothing was paid on (its days stay invoiced)."),
        Route(InvoiceSubjects.CREDIT_NOTE, IssueCreditNote, CreditNote, credit_note,
              "A numbered credit note (CN-) against an invoice; credit on the balance."),
        Route(InvoiceSubjects.CREDIT_NOTES, ListCreditNotes, CreditNotePage, credit_notes,
              "Credit notes, newest first, of an invoice or customer."),
        Route(InvoiceSubjects.GET_SETTINGS, GetInvoiceSettings, InvoiceSettings, get_settings,
              "Invoice numbering, due days and the carrier's details."),
        Route(InvoiceSubjects.SET_SETTINGS, SetInvoiceSettings, InvoiceSettings, set_settings,
              "Change the invoice settings (next_number never moves down)."),
        Route(ReportingSubjects.LAG, LagQuery, Lag, get_lag, "Projection lag and rebuild progress."),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (`python -m shared.asyncapi`; handlers never called)."""
    unused: Any = None
    return routes(audit=unused, summaries=unused, invoices=unused, lag=unused,
                  changes=unused, renderer=unused)
