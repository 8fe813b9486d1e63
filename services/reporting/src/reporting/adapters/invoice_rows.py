"""SQL of invoices: locks, the usage of days, what was billed of them, rows as contracts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from shared.contracts.events import REGISTRY
from shared.contracts.events.base import Event
from shared.contracts.events.billing import BILLING_CATEGORY
from shared.contracts.invoices import Buyer, CreditNote, Invoice, InvoiceLineOut, InvoiceSettings, Seller
from shared.envelope import EventEnvelope, Metadata
from shared.errors import ErrorCode, ServiceError

from reporting.domain.invoice import ROUNDING_NOTE, InvoiceLine, Usage, amount_due

INVOICE_COLUMNS = (
    "id, number, document_number, customer_id, currency, minor_units, tax_rate, subtotal, tax, total,"
    " amount_paid, amount_credited, status, issue_date, due_date, period_from, period_to, void_reason,"
    " seller::text, buyer::text, lines::text, created_at"
)
CREDIT_NOTE_COLUMNS = (
    "c.id, c.number, c.document_number, c.invoice_id, i.document_number AS invoice_number, c.customer_id,"
    " c.currency, c.amount, c.reason, c.created_at"
)
_SUMS = ("sum(attempts)::bigint AS attempts, sum(connected)::bigint AS connected,"
         " sum(billed_duration_s)::bigint AS billed_duration_s, sum(charge) AS charge")


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _usage(row: asyncpg.Record) -> Usage:
    return Usage(int(row["attempts"]), int(row["connected"]), int(row["billed_duration_s"]),
                 Decimal(row["charge"]))


async def lock_customer(conn: asyncpg.Connection, customer_id: str) -> None:
    """Serialize every billing change of one customer (held until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('billing:' || $1))", customer_id)


async def take_number(conn: asyncpg.Connection, kind: str) -> int:
    """The next number of a document kind; the row stays locked until commit (no gaps)."""
    number: int = await conn.fetchval(
        "UPDATE invoice_counters SET next_number = next_number + 1 WHERE kind = $1"
        " RETURNING next_number - 1", kind)
    return number


async def next_version(conn: asyncpg.Connection, stream_id: str) -> int:
    """The version the next event of a stream takes (callers hold the stream's lock)."""
    version: int = await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM events WHERE stream_id = $1", stream_id)
    return version


def event(fact: Event, stream_id: str, version: int, meta: Any, at: datetime | None = None) -> EventEnvelope:
    """The envelope of a typed billing event with the command's who and why."""
    return REGISTRY.envelope(
        fact, category=BILLING_CATEGORY, stream_id=stream_id, version=version,
        occurred_at=at or datetime.now(UTC),
        metadata=Metadata(actor=meta.actor, correlation_id=meta.correlation_id,
                          command_id=meta.command_id, reason=getattr(meta, "reason", None)),
    )


async def day_usage(conn: asyncpg.Connection, customer_id: str, days: list[date]) -> dict[date, Usage]:
    """Each chosen day's usage now (days without calls absent)."""
    if not days:
        return {}
    rows = await conn.fetch(
        f"SELECT (date_trunc('day', hour, 'UTC') AT TIME ZONE 'UTC')::date AS day, {_SUMS}"
        " FROM call_hours WHERE customer_id = $1 AND hour >= $2 AND hour < $3 GROUP BY 1",
        customer_id, _start(min(days)), _start(max(days) + timedelta(days=1)))
    wanted = set(days)
    return {r["day"]: _usage(r) for r in rows if r["day"] in wanted}


async def billed_usage(conn: asyncpg.Connection, customer_id: str) -> dict[date, Usage]:
    """What the customer's invoices (void ones too: their days stay invoiced) billed per day."""
    rows = await conn.fetch(
        f"SELECT day, {_SUMS} FROM invoiced_usage WHERE customer_id = $1 GROUP BY day", customer_id)
    return {r["day"]: _usage(r) for r in rows}


async def taken_days(conn: asyncpg.Connection, customer_id: str, days: list[date]) -> list[asyncpg.Record]:
    """The chosen days already on an invoice, with that invoice."""
    return list(await conn.fetch(
        "SELECT d.day, i.document_number FROM invoiced_days d JOIN invoices i ON i.id = d.invoice_id"
        " WHERE d.customer_id = $1 AND d.day = ANY($2::date[]) ORDER BY d.day", customer_id, days))


async def read_settings(conn: asyncpg.Connection | asyncpg.Pool) -> InvoiceSettings:
    """The invoice settings with the next number of the counter."""
    row = await conn.fetchrow(
        "SELECT s.*, c.next_number FROM invoice_settings s, invoice_counters c WHERE c.kind = 'invoice'")
    return InvoiceSettings(**{k: row[k] for k in InvoiceSettings.model_fields})


def line_out(line: InvoiceLine) -> InvoiceLineOut:
    """A drafted line as the contract shows it."""
    u = line.usage
    return InvoiceLineOut(day=line.day, kind=line.kind, attempts=u.attempts, connected=u.connected,
                          billed_duration_s=u.billed_duration_s, billed_minutes=line.billed_minutes,
                          charge=u.charge, amount=line.amount)


def invoice_of(row: asyncpg.Record) -> Invoice:
    """An invoices row as the API shows it."""
    lines = json.loads(row["lines"])
    for x in lines:  # invoices from before lines had kinds and exact charges
        x.setdefault("charge", x["amount"])
        x.setdefault("billed_minutes", str((Decimal(x["billed_duration_s"]) / 60).quantize(Decimal("0.01"))))
    data = {k: row[k] for k in row.keys() if k not in ("lines", "seller", "buyer")}
    return Invoice(
        **data, lines=[InvoiceLineOut(**x) for x in lines], seller=Seller(**json.loads(row["seller"])),
        buyer=Buyer(**json.loads(row["buyer"])),
        amount_due=Decimal(0) if row["status"] == "void" else amount_due(
            row["total"], row["amount_paid"], row["amount_credited"]),
        rounding=ROUNDING_NOTE.format(units=row["minor_units"]),
    )


def credit_note_of(row: asyncpg.Record) -> CreditNote:
    """A credit_notes row (with its invoice's number) as the API shows it."""
    return CreditNote(**{k: row[k] for k in row.keys()})


async def invoice_for_update(conn: asyncpg.Connection, invoice_id: str) -> asyncpg.Record:
    """The invoice row, locked; not_found when there is none."""
    row = await conn.fetchrow(f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1 FOR UPDATE", invoice_id)
    if row is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"invoice {invoice_id} not found")
    return row


async def customer_of_invoice(pool: asyncpg.Pool, invoice_id: str) -> str:
    """The customer of an invoice; not_found when there is none."""
    cid = await pool.fetchval("SELECT customer_id FROM invoices WHERE id = $1", invoice_id)
    if cid is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"invoice {invoice_id} not found")
    return str(cid)
