"""Payments as commands of the customer aggregate, their receipts, and the ledger's reads.

A payment is decided like any customer command (`domain/payments.py`), in the same batches;
its event's trigger writes the `payments` row in the append's transaction (migration 0010),
and a receipt for the customer's billing contacts goes to the notifier through
`message_outbox` in the same statement. Balance is `shared.money` on the ledger's totals:
payments from `payments`, charges from `ledger_charges` (projections/ledger.py).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from shared.contracts.customer import CommandMeta
from shared.contracts.events import Event
from shared.contracts.events.payments import PaymentRecorded
from shared.contracts.notify import SystemMessage
from shared.contracts.payments import ListPayments, PaymentIn, RecordPayment, SetPaymentStatus
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import Fragment
from shared.message_outbox import OutboxMessage, outbox_fragment
from shared.money import ZERO, LedgerTotals, available, balance, shown
from shared.personal_data import KeyProvider, reveal_all

from customer.domain import payments as rules
from customer.domain.state import CustomerState


@dataclass(frozen=True)
class RecordPaymentCmd:
    """Record a payment (refund, adjustment) on the customer's ledger."""

    customer_id: str
    meta: CommandMeta
    payment: PaymentIn
    source: str
    received_at: datetime
    payer_email: str | None = None
    self_service: bool = False
    expected_version: int | None = None


@dataclass(frozen=True)
class SetPaymentStatusCmd:
    """Complete or cancel a pending payment."""

    customer_id: str
    meta: CommandMeta
    payment_id: str
    status: str
    expected_version: int | None = None


PaymentCommand = RecordPaymentCmd | SetPaymentStatusCmd
PAYMENT_COMMANDS = (RecordPaymentCmd, SetPaymentStatusCmd)


def decide_payment(cmd: PaymentCommand, state: CustomerState) -> list[Event]:
    """The events of a payment command against a live customer."""
    if isinstance(cmd, RecordPaymentCmd):
        return rules.decide_record(
            state,
            cmd.payment,
            source=cmd.source,
            received_at=cmd.received_at,
            payer_email=cmd.payer_email,
            self_service=cmd.self_service,
        )
    return rules.decide_status(state, cmd.payment_id, cmd.status)


def payment_reply(cmd: PaymentCommand, state: CustomerState) -> dict[str, Any]:
    """What a payment command answers: the payment as it stands."""
    if isinstance(cmd, RecordPaymentCmd):
        found = rules.find_by_reference(state, cmd.payment.reference)
    else:
        found = rules.find(state, cmd.payment_id)
    assert found is not None
    return rules.public(state.id, found)


def receipt_fragments(
    facts: Sequence[tuple[str, Event]], working: dict[str, CustomerState | None]
) -> list[Fragment]:
    """Receipts for the payments recorded with `notify_contacts`, to the billing contacts."""
    messages: list[OutboxMessage] = []
    for stream_id, event in facts:
        if not isinstance(event, PaymentRecorded) or not event.notify_contacts:
            continue
        state = working.get(stream_id)
        if state is None:
            continue
        data = event.model_dump(mode="json")
        for contact in billing_contacts(state):
            note = SystemMessage(
                notification_id=f"receipt:{data['payment_id']}:{contact['id']}",
                channel="email",
                template="payment_receipt",
                to=contact["email"],
                customer_id=UUID(state.id),
                contact_id=UUID(contact["id"]),
                variables={
                    "contact_name": contact.get("name") or "",
                    "customer_name": state.fields["name"],
                    "amount": shown(Decimal(data["amount"]), data["currency"]),
                    "currency": data["currency"],
                    "reference": data["reference"],
                    "payment_kind": data["kind"],
                    "payment_status": data["status"],
                },
            )
            messages.append(
                OutboxMessage(
                    note.subject,
                    note.notification_id,
                    note.model_dump_json().encode(),
                    {"Patchbay-Customer-Id": state.id},
                )
            )
    return [outbox_fragment(messages)] if messages else []


def billing_contacts(state: CustomerState) -> list[dict[str, Any]]:
    """Contacts of type `billing` with an e-mail; when there are none, every contact with one."""
    with_email = [c for c in state.contacts if c.get("email")]
    billing = [c for c in with_email if c.get("contact_type") == "billing"]
    return billing or with_email


PAYMENT_SUMS_SQL = (
    "SELECT customer_id::text AS customer_id,"
    " coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0) AS payments,"
    " coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunds,"
    " coalesce(sum(amount) FILTER (WHERE kind = 'adjustment'), 0) AS adjustments"
    " FROM payments WHERE status = 'completed' {where} GROUP BY customer_id"
)


def totals_of(payment_row: Any | None, charges_row: Any | None) -> LedgerTotals:
    """The ledger's totals from a `payments` sums row and a `ledger_charges` row (either may be absent)."""
    p = payment_row or {}
    return LedgerTotals(
        payments=p.get("payments", ZERO),
        refunds=p.get("refunds", ZERO),
        adjustments=p.get("adjustments", ZERO),
        charges=charges_row["charges"] if charges_row else ZERO,
        credit_notes=charges_row["credit_notes"] if charges_row else ZERO,
    )


def today_charges(charges_row: Any | None, now: datetime) -> Decimal:
    """The charges of the current UTC day (a row of an older day: none yet today)."""
    if charges_row is None or charges_row["day"] != now.date():
        return ZERO
    return Decimal(charges_row["day_charges"])


def _payment_filter(query: ListPayments) -> tuple[str, list[Any]]:
    """The list's WHERE clause and its arguments (only the filters given)."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, op, value in (("customer_id", "=", query.customer_id), ("method", "=", query.method),
                              ("status", "=", query.status), ("kind", "=", query.kind),
                              ("recorded_at", ">=", query.since), ("recorded_at", "<", query.until)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} {op} ${len(args)}")
    return " AND ".join(clauses) or "true", args


class PaymentQueries:
    """Payment lists and the balance, from the ledger's tables."""

    def __init__(self, pool: asyncpg.Pool, keys: KeyProvider | None = None) -> None:
        self.pool = pool
        self.keys = keys  # the rows keep the events' payer_email encrypted: opened here

    async def _card(self, conn: asyncpg.Connection, customer_id: UUID) -> dict[str, Any]:
        row = await conn.fetchrow("SELECT card, deleted FROM customers WHERE id = $1", customer_id)
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"customer {customer_id} does not exist")
        if row["deleted"]:
            raise ServiceError(ErrorCode.DELETED, f"customer {customer_id} was deleted")
        card: dict[str, Any] = orjson.loads(row["card"])
        return card

    async def list(self, query: ListPayments) -> bytes:
        """A page of payments (one customer's, or everyone's), newest first, filtered."""
        offset = _offset(query.cursor)
        where, args = _payment_filter(query)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            if query.customer_id is not None:
                await self._card(conn, query.customer_id)
            total = await conn.fetchval(f"SELECT count(*) FROM payments WHERE {where}", *args)
            n = len(args)
            rows = await conn.fetch(
                f"SELECT * FROM payments WHERE {where} ORDER BY recorded_at DESC, id DESC"
                f" LIMIT ${n + 1} OFFSET ${n + 2}",
                *args,
                query.limit,
                offset,
            )
        items = [payment_json(r) for r in rows]
        if self.keys is not None:
            items = await reveal_all(items, self.keys)
        more = offset + len(items) < total
        next_cursor = _cursor(offset + len(items)) if more else None
        return orjson.dumps({"items": items, "next_cursor": next_cursor, "total": total})

    async def balance(self, customer_id: UUID, now: datetime | None = None) -> bytes:
        """Balance and available credit now (shared.money), with what they are made of."""
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            card = await self._card(conn, customer_id)
            sums = await conn.fetchrow(PAYMENT_SUMS_SQL.format(where="AND customer_id = $1"), customer_id)
            charges = await conn.fetchrow(
                "SELECT * FROM ledger_charges WHERE customer_id = $1", str(customer_id)
            )
        return orjson.dumps(balance_json(card, sums, charges, now))


def balance_json(
    card: dict[str, Any], sums: Any | None, charges: Any | None, now: datetime
) -> dict[str, Any]:
    """The balance answer of one customer from its card and ledger rows."""
    currency = card["currency"]
    totals = totals_of(dict(sums) if sums else None, charges)
    bal = balance(totals)
    debit_limit = Decimal(str(card["debit_limit"]))
    return {
        "customer_id": card["id"],
        "currency": currency,
        "balance": shown(bal, currency),
        "available": shown(available(bal, debit_limit), currency),
        "debit_limit": shown(debit_limit, currency),
        "charges": shown(totals.charges, currency),
        "payments": shown(totals.payments, currency),
        "refunds": shown(totals.refunds, currency),
        "adjustments": shown(totals.adjustments, currency),
        "credit_notes": shown(totals.credit_notes, currency),
        "today_charges": shown(today_charges(charges, now), currency),
        "daily_spend_limit": str(card.get("daily_spend_limit", "0")),
        "as_of": now.isoformat(),
    }


def payment_json(row: Any) -> dict[str, Any]:
    """A `payments` row as the API shows it."""
    out = {k: row[k] for k in row.keys()}
    out["id"], out["customer_id"] = str(out["id"]), str(out["customer_id"])
    for key in ("amount", "fee"):
        if out[key] is not None:
            out[key] = format(Decimal(out[key]).normalize(), "f")
    for key in ("received_at", "recorded_at", "updated_at"):
        out[key] = out[key].isoformat()
    return out


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except ValueError:
        raise ServiceError(ErrorCode.VALIDATION, "cursor is not one this list gave out") from None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def record_command(body: RecordPayment) -> RecordPaymentCmd:
    """The core's command from a RecordPayment request."""
    return RecordPaymentCmd(
        customer_id=str(body.customer_id),
        meta=body.meta,
        payment=body.payment,
        source=body.source,
        received_at=body.received_at or datetime.now(UTC),
        payer_email=body.payer_email,
        self_service=body.self_service,
    )


def status_command(body: SetPaymentStatus) -> SetPaymentStatusCmd:
    """The core's command from a SetPaymentStatus request."""
    return SetPaymentStatusCmd(
        customer_id=str(body.customer_id), meta=body.meta, payment_id=str(body.payment_id), status=body.status
    )
