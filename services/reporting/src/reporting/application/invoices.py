"""Generating invoices (stored with their InvoiceGenerated event in one statement) and reading them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog
from shared.contracts.events import REGISTRY
from shared.contracts.events.billing import BILLING_CATEGORY, InvoiceGenerated
from shared.contracts.reporting import GenerateInvoice, Invoice, InvoiceLineOut, InvoicePage, ListInvoices
from shared.envelope import Metadata
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import ConcurrencyError, DuplicateCommand, EventStore, Fragment
from shared.idempotency import answered_before, fingerprint
from shared.ids import new_id

from reporting.application import cursor as cursors
from reporting.application.summaries import daily_rows
from reporting.domain.invoice import DayAlreadyInvoiced, InvoiceDraft, draft_invoice

log = structlog.get_logger(__name__)

INVOICE_GENERATED = InvoiceGenerated.TYPE
CATEGORY = BILLING_CATEGORY
# (tax percent, currency) of a customer, from the customer service
CustomerTerms = Callable[[str], Awaitable[tuple[Decimal, str]]]
_COLUMNS = (
    "id, number, customer_id, currency, tax_rate, subtotal, tax, total, period_from, period_to,"
    " lines::text, created_at"
)


def invoice_of(row: asyncpg.Record) -> Invoice:
    """An invoices row as the API shows it."""
    return Invoice(**{k: row[k] for k in row.keys() if k != "lines"},
                   lines=[InvoiceLineOut(**x) for x in json.loads(row["lines"])])


def _days(cmd: GenerateInvoice) -> list[date]:
    if cmd.days is not None:
        return sorted(set(cmd.days))
    assert cmd.from_day and cmd.to_day  # the model guarantees it
    return [cmd.from_day + timedelta(days=i) for i in range((cmd.to_day - cmd.from_day).days + 1)]


class Invoices:
    """Invoice generation and queries."""

    def __init__(self, store: EventStore, terms: CustomerTerms) -> None:
        self.store = store  # raises DayAlreadyInvoiced (adapters/invoice_store.py)
        self.pool: asyncpg.Pool = store.pool
        self.terms = terms

    async def generate(self, cmd: GenerateInvoice, *, today: date | None = None) -> bytes:
        """Invoice the chosen days; a day already invoiced is a conflict; idempotent by command id."""
        command_id = cmd.meta.command_id
        request = fingerprint(cmd) if command_id else None
        # the first reply; another request with the same id: a conflict
        if command_id and (answer := await answered_before(self.store, command_id, request)) is not None:
            return answer
        cid = str(cmd.customer_id)
        days = _days(cmd)
        today = today or datetime.now(UTC).date()
        if open_days := [d for d in days if d >= today]:
            raise ServiceError(ErrorCode.VALIDATION, "only days that are over can be invoiced", [
                ErrorDetail(field="days", message=f"{d.isoformat()} is not over yet", type="day_open")
                for d in open_days[:10]])
        tax_rate, currency = await self.terms(cid)
        async with self.pool.acquire() as conn:
            draft = draft_invoice(await daily_rows(conn, cid, days), tax_rate=tax_rate, currency=currency)
        if not draft.lines:
            raise ServiceError(ErrorCode.VALIDATION, "the chosen days have no calls to invoice")
        for _ in range(5):
            try:
                return await self._store(cmd, cid, draft, request)
            except ConcurrencyError:
                continue  # another invoice of this customer took the version; take the next
            except DuplicateCommand:
                assert command_id
                answer = await answered_before(self.store, command_id, request)
                assert answer is not None
                return answer
        raise ServiceError(ErrorCode.CONFLICT, "too many concurrent invoices for this customer; retry")

    async def _already_invoiced(self, cid: str, days: list[date]) -> ServiceError:
        rows = await self.pool.fetch(
            "SELECT day, invoice_id FROM invoiced_days WHERE customer_id = $1 AND day = ANY($2::date[])"
            " ORDER BY day", cid, days,
        )
        return ServiceError(ErrorCode.CONFLICT, "some of these days are already invoiced", [
            ErrorDetail(field="days", type="already_invoiced",
                        message=f"{r['day'].isoformat()} is on invoice {r['invoice_id']}")
            for r in rows])

    async def _store(self, cmd: GenerateInvoice, cid: str, draft: InvoiceDraft, request: str | None) -> bytes:
        days = [line.day for line in draft.lines]
        if await self.pool.fetchval(
            "SELECT 1 FROM invoiced_days WHERE customer_id = $1 AND day = ANY($2::date[]) LIMIT 1",
            cid, days,
        ):
            raise await self._already_invoiced(cid, days)
        number, version = await self.pool.fetchrow(
            "SELECT nextval('invoice_numbers'),"
            " coalesce((SELECT max(version) FROM events WHERE stream_id = $1), 0) + 1", cid,
        )
        invoice = Invoice(
            id=new_id(), number=number, customer_id=cid, currency=draft.currency,
            tax_rate=draft.tax_rate, lines=[InvoiceLineOut(**vars(x)) for x in draft.lines],
            subtotal=draft.subtotal, tax=draft.tax, total=draft.total,
            period_from=draft.period_from, period_to=draft.period_to, created_at=datetime.now(UTC),
        )
        body = invoice.model_dump(mode="json")
        meta = cmd.meta
        event = REGISTRY.envelope(
            InvoiceGenerated.model_validate(body), category=CATEGORY, stream_id=cid,
            version=version, occurred_at=invoice.created_at,
            metadata=Metadata(actor=meta.actor, correlation_id=meta.correlation_id,
                              command_id=meta.command_id, reason=meta.reason),
        )
        reply = invoice.model_dump_json()
        fragments = [
            Fragment(
                "INSERT INTO invoices (id, number, customer_id, currency, tax_rate, subtotal, tax,"
                " total, period_from, period_to, lines, created_at, created_by) VALUES"
                " ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}::jsonb, {}, {}::jsonb)",
                [invoice.id, number, cid, draft.currency, draft.tax_rate, draft.subtotal, draft.tax,
                 draft.total, draft.period_from, draft.period_to, json.dumps(body["lines"]),
                 invoice.created_at, meta.actor.model_dump_json()],
            ),
            Fragment("INSERT INTO invoiced_days (customer_id, day, invoice_id)"
                     " SELECT {}, unnest({}::date[]), {}", [cid, days, invoice.id]),
        ]
        try:
            await self.store.append(
                [event], replies=[(meta.command_id, reply, request)] if meta.command_id else (),
                fragments=fragments,
            )
        except DayAlreadyInvoiced:  # an invoice of the same days committed first
            raise await self._already_invoiced(cid, days) from None
        log.info("invoice_generated", invoice_id=str(invoice.id), customer_id=cid, total=str(draft.total))
        return reply.encode()

    async def get(self, invoice_id: str) -> Invoice:
        """One invoice, or not_found."""
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM invoices WHERE id = $1", invoice_id)
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"invoice {invoice_id} not found")
        return invoice_of(row)

    async def page(self, query: ListInvoices) -> InvoicePage:
        """Invoices newest first, of one customer or all."""
        where: list[str] = ["true"]
        args_: list[Any] = []
        if query.customer_id is not None:
            args_.append(str(query.customer_id))
            where.append(f"customer_id = ${len(args_)}")
        n = len(args_)
        page = list(where)
        if query.cursor:
            moment, key = cursors.decode(query.cursor)
            args_ += [moment, key]
            page.append(f"(created_at, id) < (${n + 1}, ${n + 2}::uuid)")
        args_.append(query.limit + 1)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM invoices WHERE {' AND '.join(page)}"
                f" ORDER BY created_at DESC, id DESC LIMIT ${len(args_)}", *args_,
            )
            total = await conn.fetchval(f"SELECT count(*) FROM invoices WHERE {' AND '.join(where)}",
                                        *args_[:n])
        items = [invoice_of(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        next_cursor = cursors.encode(items[-1].created_at, str(items[-1].id)) if more else None
        return InvoicePage(items=items, total=total, next_cursor=next_cursor)
