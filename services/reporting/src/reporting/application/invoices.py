"""Issuing invoices (numbered, with late usage, in one transaction with their event) and reading them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog
from shared.contracts.events.billing import InvoiceIssued
from shared.contracts.invoices import Buyer, Invoice, InvoicePage, ListInvoices, Seller
from shared.contracts.reporting import GenerateInvoice
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import DuplicateCommand, EventStore, Fragment
from shared.idempotency import answered_before, fingerprint
from shared.ids import new_id

from reporting.adapters import invoice_rows as sql
from reporting.application import cursor as cursors
from reporting.domain.invoice import (
    ROUNDING_NOTE,
    DayAlreadyInvoiced,
    InvoiceDraft,
    draft_invoice,
    late_usage,
)

log = structlog.get_logger(__name__)



@dataclass(frozen=True)
class Terms:
    """What an invoice takes from the customer's card when it is issued."""

    tax: Decimal
    currency: str
    name: str = ""
    address: str = ""


# a customer's terms, from the customer service
CustomerTerms = Callable[[str], Awaitable[Terms]]
# told after an invoice committed (payments waiting as credit are applied to it)
AfterIssue = Callable[[str], Awaitable[None]]


def _days(cmd: GenerateInvoice) -> list[date]:
    if cmd.days is not None:
        return sorted(set(cmd.days))
    assert cmd.from_day and cmd.to_day  # the model guarantees it
    return [cmd.from_day + timedelta(days=i) for i in range((cmd.to_day - cmd.from_day).days + 1)]


def _conflict(rows: list[asyncpg.Record]) -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, "some of these days are already invoiced", [
        ErrorDetail(field="days", type="already_invoiced",
                    message=f"{r['day'].isoformat()} is on invoice {r['document_number']}")
        for r in rows[:10]])


class Invoices:
    """Invoice generation and queries."""

    def __init__(self, store: EventStore, terms: CustomerTerms) -> None:
        self.store = store  # raises DayAlreadyInvoiced (adapters/invoice_store.py)
        self.pool: asyncpg.Pool = store.pool
        self.terms = terms
        self.after_issue: AfterIssue | None = None

    async def generate(self, cmd: GenerateInvoice, *, today: date | None = None) -> bytes:
        """Invoice the chosen days (and any late usage); idempotent by command id."""
        command_id = cmd.meta.command_id
        request = fingerprint(cmd) if command_id else None
        if command_id and (answer := await answered_before(self.store, command_id, request)) is not None:
            return answer
        cid = str(cmd.customer_id)
        days = _days(cmd)
        today = today or datetime.now(UTC).date()
        if open_days := [d for d in days if d >= today]:
            raise ServiceError(ErrorCode.VALIDATION, "only days that are over can be invoiced", [
                ErrorDetail(field="days", message=f"{d.isoformat()} is not over yet", type="day_open")
                for d in open_days[:10]])
        terms = await self.terms(cid)
        try:
            reply, invoice = await self._issue(cmd, cid, days, terms, request, today)
        except DuplicateCommand:
            assert command_id
            answer = await answered_before(self.store, command_id, request)
            assert answer is not None
            return answer
        if self.after_issue is not None:
            await self.after_issue(cid)
            reply = (await self.get(str(invoice.id))).model_dump_json()
        return reply.encode()

    async def _issue(
        self, cmd: GenerateInvoice, cid: str, days: list[date], terms: Terms, request: str | None,
        today: date,
    ) -> tuple[str, Invoice]:
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.lock_customer(conn, cid)
            if taken := await sql.taken_days(conn, cid, days):
                raise _conflict(taken)
            billed = await sql.billed_usage(conn, cid)
            late = late_usage(await sql.day_usage(conn, cid, sorted(billed)), billed)
            draft = draft_invoice(await sql.day_usage(conn, cid, days), late, tax_rate=terms.tax,
                                  currency=terms.currency)
            if not draft.lines:
                raise ServiceError(ErrorCode.VALIDATION, "the chosen days have no calls to invoice")
            settings = await sql.read_settings(conn)
            number = await sql.take_number(conn, "invoice")  # locked until commit: one at a time
            invoice = self._invoice(cid, draft, number, settings.prefix, settings.due_days,
                                    Seller(**settings.model_dump(include=set(Seller.model_fields))),
                                    Buyer(name=terms.name, address=terms.address), today)
            body = invoice.model_dump(mode="json")
            version = await sql.next_version(conn, cid)
            reply = invoice.model_dump_json()
            try:
                await self.store.append(
                    [sql.event(InvoiceIssued.model_validate(body), cid, version, cmd.meta,
                               invoice.created_at)],
                    replies=[(cmd.meta.command_id, reply, request)] if cmd.meta.command_id else (),
                    fragments=self._fragments(invoice, draft, body, cmd), conn=conn,
                )
            except DayAlreadyInvoiced:  # cannot happen under the customer's lock; kept as a guard
                raise _conflict(await sql.taken_days(conn, cid, days)) from None
        log.info("invoice_issued", invoice_id=str(invoice.id), number=invoice.document_number,
                 customer_id=cid, total=str(invoice.total), late_lines=len(late))
        return reply, invoice

    @staticmethod
    def _invoice(cid: str, draft: InvoiceDraft, number: int, prefix: str, due_days: int, seller: Seller,
                 buyer: Buyer, today: date) -> Invoice:
        return Invoice(
            id=new_id(), number=number, document_number=f"{prefix}{number}", customer_id=cid,
            currency=draft.currency, minor_units=draft.minor_units, tax_rate=draft.tax_rate,
            lines=[sql.line_out(x) for x in draft.lines], subtotal=draft.subtotal, tax=draft.tax,
            total=draft.total, amount_paid=Decimal(0), amount_credited=Decimal(0), amount_due=draft.total,
            status="open" if draft.total > 0 else "paid", issue_date=today,
            due_date=today + timedelta(days=due_days),
            period_from=draft.period_from, period_to=draft.period_to, seller=seller, buyer=buyer,
            rounding=ROUNDING_NOTE.format(units=draft.minor_units), created_at=datetime.now(UTC),
        )

    @staticmethod
    def _fragments(
        invoice: Invoice, draft: InvoiceDraft, body: dict[str, Any], cmd: GenerateInvoice
    ) -> list[Fragment]:
        iid, cid = invoice.id, invoice.customer_id
        usage = [(x.day, x.kind == "late_usage", x.usage) for x in draft.lines]
        return [
            Fragment(
                "INSERT INTO invoices (id, number, document_number, customer_id, currency, minor_units,"
                " tax_rate, subtotal, tax, total, issue_date, due_date, period_from, period_to, lines,"
                " seller, buyer, created_at, created_by, status) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {},"
                " {}, {}, {}, {}, {}, {}::jsonb, {}::jsonb, {}::jsonb, {}, {}::jsonb, {})",
                [iid, invoice.number, invoice.document_number, cid, invoice.currency, invoice.minor_units,
                 invoice.tax_rate, invoice.subtotal, invoice.tax, invoice.total, invoice.issue_date,
                 invoice.due_date, invoice.period_from, invoice.period_to, json.dumps(body["lines"]),
                 json.dumps(body["seller"]), json.dumps(body["buyer"]), invoice.created_at,
                 cmd.meta.actor.model_dump_json(), invoice.status],
            ),
            Fragment("INSERT INTO invoiced_days (customer_id, day, invoice_id)"
                     " SELECT {}, unnest({}::date[]), {}", [cid, draft.usage_days, iid]),
            Fragment(
                "INSERT INTO invoiced_usage (customer_id, day, invoice_id, late, attempts, connected,"
                " billed_duration_s, charge) SELECT {}, d, {}, l, a, c, b, ch FROM unnest({}::date[],"
                " {}::bool[], {}::bigint[], {}::bigint[], {}::bigint[], {}::numeric[])"
                " AS x(d, l, a, c, b, ch)",
                [cid, iid, [d for d, _, _ in usage], [late for _, late, _ in usage],
                 [u.attempts for _, _, u in usage], [u.connected for _, _, u in usage],
                 [u.billed_duration_s for _, _, u in usage], [u.charge for _, _, u in usage]],
            ),
        ]

    async def get(self, invoice_id: str, customer_id: str | None = None) -> Invoice:
        """One invoice (of that customer, when given), or not_found."""
        row = await self.pool.fetchrow(f"SELECT {sql.INVOICE_COLUMNS} FROM invoices WHERE id = $1",
                                       invoice_id)
        if row is None or (customer_id is not None and row["customer_id"] != customer_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"invoice {invoice_id} not found")
        return sql.invoice_of(row)

    async def page(self, query: ListInvoices) -> InvoicePage:
        """Invoices newest first, of one customer or all, of some statuses or all, overlapping a period."""
        where: list[str] = ["true"]
        args_: list[Any] = []
        if query.customer_id is not None:
            args_.append(str(query.customer_id))
            where.append(f"customer_id = ${len(args_)}")
        if query.status:
            args_.append(list(query.status))
            where.append(f"status = ANY(${len(args_)}::text[])")
        if query.period_from is not None:
            args_.append(query.period_from)
            where.append(f"period_to >= ${len(args_)}")
        if query.period_to is not None:
            args_.append(query.period_to)
            where.append(f"period_from <= ${len(args_)}")
        n = len(args_)
        page = list(where)
        if query.cursor:
            moment, key = cursors.decode(query.cursor)
            args_ += [moment, key]
            page.append(f"(created_at, id) < (${n + 1}, ${n + 2}::uuid)")
        args_.append(query.limit + 1)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                f"SELECT {sql.INVOICE_COLUMNS} FROM invoices WHERE {' AND '.join(page)}"
                f" ORDER BY created_at DESC, id DESC LIMIT ${len(args_)}", *args_,
            )
            total = await conn.fetchval(f"SELECT count(*) FROM invoices WHERE {' AND '.join(where)}",
                                        *args_[:n])
        items = [sql.invoice_of(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        next_cursor = cursors.encode(items[-1].created_at, str(items[-1].id)) if more else None
        return InvoicePage(items=items, total=total, next_cursor=next_cursor)
