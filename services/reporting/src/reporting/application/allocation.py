"""Completed payments allocated to open invoices, oldest invoice first (product.md section 13).

The payments are the customer service's ledger events on CUSTOMER_EVENTS: `PaymentRecorded`
(kind `payment`; refunds and adjustments move the balance, not invoices) and
`PaymentStatusChanged` (a pending payment completed). Each payment is kept once by its id
with what is not allocated yet; whatever is left pays the customer's next invoices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.events.billing import PaymentAllocated
from shared.contracts.events.payments import PaymentRecorded, PaymentStatusChanged
from shared.envelope import SYSTEM, EventEnvelope
from shared.eventstore import EventStore

from reporting.adapters import invoice_rows as sql
from reporting.application.invoice_changes import paid_event
from reporting.domain.invoice import ZERO, amount_due

log = structlog.get_logger(__name__)



def consumer_spec(prefix: str) -> ConsumerSpec:
    """The durable consumer of the payment events (one per partition, `<prefix>-invoice-payments`)."""
    return ConsumerSpec(
        stream="CUSTOMER_EVENTS", durable=f"{prefix}-invoice-payments",
        filter_subjects=["events.customer.*.PaymentRecorded", "events.customer.*.PaymentStatusChanged"],
    )
_OPEN_INVOICES = (
    "SELECT id, document_number, currency, total, amount_paid, amount_credited, status FROM invoices"
    " WHERE customer_id = $1 AND status IN ('open', 'overdue') ORDER BY issue_date, number FOR UPDATE"
)
_CREDITS = (
    "SELECT payment_id, currency, unallocated FROM invoice_payments WHERE customer_id = $1"
    " AND status = 'completed' AND unallocated > 0 ORDER BY received_at, payment_id FOR UPDATE"
)


class _Meta:
    actor = SYSTEM
    correlation_id = None
    command_id = None
    reason = "payment allocated oldest invoice first"


def _decode(msg: Msg) -> EventEnvelope:
    try:
        return EventEnvelope.model_validate_json(msg.data)
    except ValidationError as exc:
        raise Poison(f"not an event envelope: {exc.errors(include_url=False)[:3]}") from exc


class PaymentAllocation:
    """Keeps the customers' payments and allocates them to open invoices."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pool: asyncpg.Pool = store.pool

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """A batch of payment events: keep each once, then allocate for the customers touched."""
        touched: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for msg in msgs:
                envelope = _decode(msg)
                if await self._keep(conn, envelope):
                    touched.append(envelope.stream_id)
        for cid in dict.fromkeys(touched):
            await self.allocate(cid)

    async def _keep(self, conn: asyncpg.Connection, envelope: EventEnvelope) -> bool:
        try:
            if envelope.type == PaymentRecorded.TYPE:
                p = PaymentRecorded.model_validate(envelope.data)
                if p.kind != "payment":
                    return False
                row = await conn.fetchval(
                    "INSERT INTO invoice_payments (payment_id, customer_id, currency, amount, unallocated,"
                    " status, received_at) VALUES ($1, $2, $3, $4, $4, $5, $6)"
                    " ON CONFLICT (payment_id) DO NOTHING RETURNING status",
                    p.payment_id, envelope.stream_id, p.currency, Decimal(p.amount), p.status,
                    datetime.fromisoformat(p.received_at))
                return bool(row == "completed")
            if envelope.type == PaymentStatusChanged.TYPE:
                change = PaymentStatusChanged.model_validate(envelope.data)
                row = await conn.fetchval(
                    "UPDATE invoice_payments SET status = $2 WHERE payment_id = $1 AND status = 'pending'"
                    " RETURNING status", change.payment_id, change.new)
                return bool(row == "completed")
        except (ValidationError, ValueError) as exc:
            raise Poison(f"unreadable {envelope.type}: {exc}") from exc
        return False

    async def allocate(self, customer_id: str) -> int:
        """Allocate the customer's unallocated payments to its open invoices; how many allocations."""
        made = 0
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.lock_customer(conn, customer_id)
            invoices = [dict(r) for r in await conn.fetch(_OPEN_INVOICES, customer_id)]
            credits = [dict(r) for r in await conn.fetch(_CREDITS, customer_id)]
            events: list[EventEnvelope] = []
            version = await sql.next_version(conn, customer_id)
            now = datetime.now(UTC)
            for inv in invoices:
                before = inv["amount_paid"]
                for credit in credits:
                    due = amount_due(inv["total"], inv["amount_paid"], inv["amount_credited"])
                    if due == ZERO:
                        break
                    if credit["currency"] != inv["currency"] or credit["unallocated"] <= ZERO:
                        continue
                    amount = min(due, credit["unallocated"])
                    credit["unallocated"] -= amount
                    inv["amount_paid"] += amount
                    await conn.execute(
                        "INSERT INTO payment_allocations (payment_id, invoice_id, amount, allocated_at)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id, invoice_id)"
                        " DO UPDATE SET amount = payment_allocations.amount + excluded.amount",
                        credit["payment_id"], inv["id"], amount, now)
                    await conn.execute("UPDATE invoice_payments SET unallocated = $2 WHERE payment_id = $1",
                                       credit["payment_id"], credit["unallocated"])
                    events.append(sql.event(PaymentAllocated(
                        payment_id=str(credit["payment_id"]), invoice_id=str(inv["id"]),
                        customer_id=customer_id, document_number=inv["document_number"],
                        currency=inv["currency"], amount=str(amount), amount_paid=str(inv["amount_paid"])),
                        customer_id, version + len(events), _Meta, now))
                    made += 1
                if inv["amount_paid"] == before:
                    continue
                paid = amount_due(inv["total"], inv["amount_paid"], inv["amount_credited"]) == ZERO
                await conn.execute(
                    "UPDATE invoices SET amount_paid = $2, status = $3,"
                    " status_at = CASE WHEN $3 = status THEN status_at ELSE now() END WHERE id = $1",
                    inv["id"], inv["amount_paid"], "paid" if paid else inv["status"])
                if paid:
                    events.append(paid_event(inv, customer_id, version + len(events), _Meta,
                                             inv["amount_paid"], inv["amount_credited"]))
            if events:
                await self.store.append(events, conn=conn)
        if made:
            log.info("payments_allocated", customer_id=customer_id, allocations=made)
        return made
