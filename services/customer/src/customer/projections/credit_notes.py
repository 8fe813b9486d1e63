"""Credit notes on the ledger: reporting's `CreditNoteIssued` (BILLING_EVENTS) into `ledger_credit_notes`.

Each note counts once by its id; the customer's sum of notes is kept on its `ledger_charges`
row (the same `seq` and LEDGER_CHANGED message the dial views already follow), so balance and
available credit take it into account within a second (product.md 11: balance = payments -
refunds + adjustments + credit notes - charges with tax).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import asyncpg
import orjson
from nats.aio.msg import Msg
from pydantic import ValidationError
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.events.billing import CreditNoteIssued
from shared.envelope import EventEnvelope
from shared.money import ZERO

from customer.projections.ledger import LIVE, Charges, LedgerTables

SPEC = ConsumerSpec(
    stream="BILLING_EVENTS", durable="customer-ledger-credit-notes",
    filter_subjects=["events.billing.*.CreditNoteIssued"],
)


def insert_sql(tables: LedgerTables) -> str:
    """New notes by id (RETURNING: the new ones' customers and amounts)."""
    return (
        f"INSERT INTO {tables.credit_notes} (id, customer_id, invoice_id, document_number, amount, currency,"
        " issued_at) SELECT id, customer_id, invoice_id, document_number, amount, currency, issued_at"
        " FROM json_to_recordset($1::json) AS x(id uuid, customer_id text, invoice_id uuid,"
        " document_number text, amount numeric, currency text, issued_at timestamptz)"
        " ON CONFLICT (id) DO NOTHING RETURNING customer_id, amount"
    )


def _add(tables: LedgerTables) -> str:
    t = tables.charges
    return (
        f"INSERT INTO {t} (customer_id, credit_notes, seq, updated_at)"
        " SELECT c, a, 1, now() FROM unnest($1::text[], $2::numeric[]) AS x(c, a)"
        " ON CONFLICT (customer_id) DO UPDATE"
        f" SET credit_notes = {t}.credit_notes + excluded.credit_notes,"
        f" seq = {t}.seq + 1, updated_at = now()"
        " RETURNING customer_id, charges, day, day_charges, seq, credit_notes"
    )


_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (consumer, seq) VALUES ($1, $2)"
    " ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(ledger_checkpoints.seq, excluded.seq)"
)


def decode(msg: Msg) -> CreditNoteIssued:
    """The credit note of an event envelope, or Poison."""
    return decode_data(msg.data)


def decode_data(data: bytes) -> CreditNoteIssued:
    """The credit note of an event envelope's bytes (live and rebuild: one verdict), or Poison."""
    try:
        return CreditNoteIssued.model_validate(EventEnvelope.model_validate_json(data).data)
    except ValidationError as exc:
        raise Poison(f"not a CreditNoteIssued event: {exc.errors(include_url=False)[:3]}") from exc


class CreditNotesProjection:
    """The consumer's batch handler: notes in, the customers' totals out to the dial views."""

    def __init__(self, pool: asyncpg.Pool, on_changed: Callable[[list[Charges]], Awaitable[None]]) -> None:
        self.pool = pool
        self.on_changed = on_changed

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """One transaction: the new notes, their customers' sums, the checkpoint."""
        notes = {n.id: n for n in (decode(m) for m in msgs)}
        consumer = msgs[0].metadata.consumer or SPEC.durable
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await write_notes(conn, list(notes.values()), LIVE,
                                        (consumer, max(m.metadata.sequence.stream for m in msgs)))
        if changed:
            await self.on_changed(changed)


def rows_json(notes: list[CreditNoteIssued]) -> str:
    """The notes as the JSON document `insert_sql` reads."""
    return orjson.dumps([
        {"id": n.id, "customer_id": n.customer_id, "invoice_id": n.invoice_id,
         "document_number": n.document_number, "amount": n.amount, "currency": n.currency,
         "issued_at": n.created_at} for n in notes]).decode()


async def write_notes(
    conn: asyncpg.Connection, notes: list[CreditNoteIssued], tables: LedgerTables,
    checkpoint: tuple[str, int] | None,
) -> list[Charges]:
    """The new notes (once by id), their customers' sums and the checkpoint, in the caller's transaction."""
    added: dict[str, Decimal] = {}
    for row in await conn.fetch(insert_sql(tables), rows_json(notes)):
        added[row["customer_id"]] = added.get(row["customer_id"], ZERO) + row["amount"]
    changed = []
    if added:
        customers = sorted(added)
        changed = [Charges.of_row(r) for r in await conn.fetch(
            _add(tables), customers, [added[c] for c in customers])]
    if checkpoint is not None:
        await conn.execute(_CHECKPOINT, *checkpoint)
    return changed
