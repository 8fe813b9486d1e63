"""Call charges on the ledger: `calls.cdr.<customer_id>` (stream CALLS) into `ledger_charges`.

Each record counts once by call id (`ledger_calls`), with the customer's tax at the call's
start (`tax_history`, kept by the events trigger of migration 0010) put on by
`shared.money.with_tax`. A batch's rows, the customers' totals and the partition's checkpoint
commit together (one statement, `LedgerTables.add_calls`); then the new totals go to the dial
views in memory (this process at once, other replicas through `LEDGER_CHANGED` on core NATS).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import orjson
import structlog
from nats.aio.msg import Msg
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.wire import WireCallCharge, call_charge_of
from shared.money import ZERO, with_tax

log = structlog.get_logger(__name__)

# one ack per batch: each partition has one ordered reader (an explicit ack per record cost this
# process and nats-server a publish each; docs/performance.md, "Dial permission with CDRs ... third round")
SPEC = ConsumerSpec(stream="CALLS", durable="customer-ledger", filter_subjects=["calls.cdr.*"], ack_all=True)
# every replica's dial views follow the charges through this core NATS subject
LEDGER_CHANGED = "customer.internal.ledger-changed"

_TAXES = (
    "SELECT r.call_id, coalesce("
    " (SELECT tax FROM tax_history h WHERE h.customer_id = r.customer_id AND h.effective_at <= r.started_at"
    "  ORDER BY effective_at DESC LIMIT 1),"
    " (SELECT tax FROM tax_history h WHERE h.customer_id = r.customer_id ORDER BY effective_at LIMIT 1),"
    " 0) AS tax"
    " FROM json_to_recordset($1::json) AS r(call_id text, customer_id text, started_at timestamptz)"
)
_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (consumer, seq) VALUES ($1, $2)"
    " ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(ledger_checkpoints.seq, excluded.seq)"
)


class TaxBook:
    """`tax_history` in memory, for a rebuild's bulk replay: the rule of `_TAXES` (the latest rate
    from before the call's start, else the first one) without a query per batch."""

    def __init__(self, rows: Sequence[tuple[str, datetime, Decimal]]) -> None:
        self.rates: dict[str, tuple[list[datetime], list[Decimal]]] = {}
        for customer_id, effective_at, tax in sorted(rows, key=lambda r: (r[0], r[1])):
            times, taxes = self.rates.setdefault(customer_id, ([], []))
            times.append(effective_at)
            taxes.append(tax)

    @classmethod
    async def load(cls, conn: asyncpg.Connection) -> TaxBook:
        """Every customer's rates as they are now."""
        rows = await conn.fetch("SELECT customer_id, effective_at, tax FROM tax_history")
        return cls([(r[0], r[1], r[2]) for r in rows])

    def at(self, customer_id: str, started_at: datetime) -> Decimal | None:
        """The customer's rate at the call's start; None for a customer not here (ask `_TAXES`)."""
        if (found := self.rates.get(customer_id)) is None:
            return None
        times, taxes = found
        i = bisect_right(times, started_at)
        return taxes[i - 1] if i else taxes[0]


@dataclass(frozen=True, slots=True)
class LedgerTables:
    """The stream-fed ledger tables: the live ones, or the `__next` copies a rebuild fills."""

    calls: str = "ledger_calls"
    charges: str = "ledger_charges"
    credit_notes: str = "ledger_credit_notes"

    def names(self) -> tuple[str, str, str]:
        """In the order a switch-over locks them (calls and notes before the totals both write)."""
        return (self.calls, self.credit_notes, self.charges)

    def insert_calls(self, returning: str = "call_id") -> str:
        """New calls by call id; the ones already there are left alone (RETURNING: the new)."""
        return (
            f"INSERT INTO {self.calls} (call_id, customer_id, started_at, charge, tax, charged)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[], $5::numeric[],"
            f" $6::numeric[]) ON CONFLICT (call_id) DO NOTHING RETURNING {returning}"
        )

    def add_calls(self, checkpoint: bool) -> str:
        """New calls by call id and their customers' totals in one statement (atomic without a
        transaction; with `checkpoint`, the consumer's checkpoint ($7, $8) too); RETURNING the
        changed customers' totals.

        A batch's new calls are summed per customer: all, how many, and those of its latest UTC
        day; each sum is then added to the customer's totals by `_add_day`'s rule (a later day
        starts today's charges again, the same day adds to them, an earlier day counts in all
        only): the rule `add_call` applies call by call, applied once to the batch's sums."""
        t = self.charges
        # the calls first: the order a switch-over locks the tables in (`names`)
        mark = f" checkpoint AS ({_CHECKPOINT.replace('$1', '$7').replace('$2', '$8')}),"
        mark = mark if checkpoint else ""
        return (
            f"WITH new AS ({self.insert_calls('customer_id, started_at, charged')}),{mark}"
            " per_day AS (SELECT customer_id, (started_at AT TIME ZONE 'UTC')::date AS day,"
            " sum(charged) AS charged, count(*) AS calls FROM new GROUP BY 1, 2),"
            " batch AS (SELECT DISTINCT ON (customer_id) customer_id, day, charged AS day_charges,"
            " sum(charged) OVER w AS charges, sum(calls) OVER w AS calls FROM per_day"
            " WINDOW w AS (PARTITION BY customer_id) ORDER BY customer_id, day DESC)"
            f" INSERT INTO {t} AS t (customer_id, charges, calls, day, day_charges, seq, updated_at)"
            " SELECT customer_id, charges, calls, day, day_charges, 1, now() FROM batch ORDER BY customer_id"
            " ON CONFLICT (customer_id) DO UPDATE SET charges = t.charges + excluded.charges,"
            " calls = t.calls + excluded.calls, day = GREATEST(t.day, excluded.day),"
            " day_charges = CASE WHEN t.day IS NULL OR excluded.day > t.day THEN excluded.day_charges"
            " WHEN excluded.day = t.day THEN t.day_charges + excluded.day_charges ELSE t.day_charges END,"
            " seq = t.seq + 1, updated_at = now()"
            " RETURNING customer_id, charges, day, day_charges, seq, credit_notes"
        )


LIVE = LedgerTables()


@dataclass(frozen=True, slots=True)
class Charges:
    """One customer's charges with tax: all, and those of its latest UTC day; `seq` orders versions."""

    customer_id: str
    charges: Decimal
    day: date | None
    day_charges: Decimal
    seq: int
    credit_notes: Decimal = ZERO  # credit notes issued (reporting's CreditNoteIssued), a credit

    def json(self) -> bytes:
        """One item as JSON."""
        return orjson.dumps(self.item())

    def item(self) -> dict[str, object]:
        """As an item of a LEDGER_CHANGED message (a JSON list, one item per changed customer)."""
        return (
            {
                "customer_id": self.customer_id,
                "charges": str(self.charges),
                "day": self.day.isoformat() if self.day else None,
                "day_charges": str(self.day_charges),
                "seq": self.seq,
                "credit_notes": str(self.credit_notes),
            }
        )

    @classmethod
    def parse_many(cls, data: bytes) -> list[Charges]:
        """Every item of a LEDGER_CHANGED message."""
        value = orjson.loads(data)
        return [cls.of_json(d) for d in (value if isinstance(value, list) else [value])]

    @classmethod
    def parse(cls, data: bytes) -> Charges:
        """From a LEDGER_CHANGED message."""
        return cls.of_json(orjson.loads(data))

    @classmethod
    def of_json(cls, d: dict[str, str]) -> Charges:
        """From one item of a LEDGER_CHANGED message."""
        return cls(
            str(d["customer_id"]),
            Decimal(d["charges"]),
            date.fromisoformat(d["day"]) if d["day"] else None,
            Decimal(d["day_charges"]),
            int(d["seq"]),
            Decimal(d.get("credit_notes") or 0),
        )

    @classmethod
    def of_row(cls, row: asyncpg.Record) -> Charges:
        """From a `ledger_charges` row."""
        return cls(row["customer_id"], row["charges"], row["day"], row["day_charges"], row["seq"],
                   row["credit_notes"])


def decode(msg: Msg) -> WireCallCharge:
    """A call record, or Poison."""
    return decode_data(msg.data)


def decode_data(data: bytes) -> WireCallCharge:
    """A call record from its bytes (the live consumer and a rebuild: one verdict), or Poison.

    msgspec's reader of the model's fields (shared.contracts.wire, held to `CallCharge` by
    shared/tests/test_wire.py): a third of pydantic's cost per record."""
    try:
        return call_charge_of(data)
    except ValueError as exc:
        raise Poison(f"not a call record: {exc}") from exc


def add_call(totals: dict[str, list], record: WireCallCharge, charged: Decimal) -> None:
    """One new call on its customer's running totals [charges, calls, day, day_charges]."""
    t = totals.setdefault(record.customer_id, [ZERO, 0, None, ZERO])
    t[0] += charged
    t[1] += 1
    t[2], t[3] = _add_day(t[2], t[3], record.started_at, charged)


async def taxes_at_start(conn: asyncpg.Connection, records: Sequence[WireCallCharge]) -> dict[str, Decimal]:
    """Each call's customer tax at the call's start (tax_history), by call id."""
    keys = orjson.dumps(
        [{"call_id": r.call_id, "customer_id": r.customer_id, "started_at": r.started_at.isoformat()}
         for r in records]
    ).decode()
    return {row["call_id"]: row["tax"] for row in await conn.fetch(_TAXES, keys)}


def _add_day(
    day: date | None, day_charges: Decimal, started: datetime, charged: Decimal
) -> tuple[date, Decimal]:
    """Today's charges follow the latest UTC day seen; a late record of an older day only counts in all."""
    d = started.astimezone(UTC).date()
    if day is None or d > day:
        return d, charged
    if d == day:
        return day, day_charges + charged
    return day, day_charges


class LedgerProjection:
    """The CALLS consumer's batch handler: records in, totals out."""

    def __init__(self, pool: asyncpg.Pool, on_changed: Callable[[list[Charges]], Awaitable[None]]) -> None:
        self.pool = pool
        self.on_changed = on_changed
        self.records = 0

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """Write a batch (once per call id) and tell the dial views."""
        records: dict[str, WireCallCharge] = {}
        for msg in msgs:
            record = decode(msg)
            records.setdefault(record.call_id, record)
        consumer = msgs[0].metadata.consumer or SPEC.durable
        last_seq = max(m.metadata.sequence.stream for m in msgs)
        changed = await self.write(list(records.values()), consumer, last_seq)
        self.records += len(records)
        if changed:
            await self.on_changed(changed)

    async def write(self, records: list[WireCallCharge], consumer: str, last_seq: int) -> list[Charges]:
        """The new calls, their customers' totals and the checkpoint: one statement, no transaction."""
        async with self.pool.acquire() as conn:
            return await write_calls(conn, records, LIVE, (consumer, last_seq))


async def write_calls(
    conn: asyncpg.Connection, records: list[WireCallCharge], tables: LedgerTables,
    checkpoint: tuple[str, int] | None,
) -> list[Charges]:
    """The new calls (once by call id), their customers' totals and the checkpoint; a rebuild's
    catch-up writes its `__next` tables this way (no checkpoint).

    Two round trips, the taxes then `add_calls` (one atomic statement): a transaction's BEGIN,
    the totals read back to Python and COMMIT were five (docs/performance.md, "Dial permission
    with CDRs, and the board after writes, third round")."""
    taxes = await taxes_at_start(conn, records)
    args: list[object] = [
        [r.call_id for r in records],
        [r.customer_id for r in records],
        [r.started_at for r in records],
        [r.charge for r in records],
        [taxes.get(r.call_id, ZERO) for r in records],
        [with_tax(r.charge, taxes.get(r.call_id, ZERO)) for r in records],
    ]
    if checkpoint is not None:
        args += checkpoint
    rows = await conn.fetch(tables.add_calls(checkpoint is not None), *args)
    return [Charges.of_row(row) for row in rows]


async def load_charges(pool: asyncpg.Pool, customer_ids: list[str] | None = None) -> list[Charges]:
    """Every customer's charges (or these customers')."""
    if customer_ids is None:
        rows = await pool.fetch(
            "SELECT customer_id, charges, day, day_charges, seq, credit_notes FROM ledger_charges")
    else:
        rows = await pool.fetch(
            "SELECT customer_id, charges, day, day_charges, seq, credit_notes FROM ledger_charges"
            " WHERE customer_id = ANY($1::text[])",
            customer_ids,
        )
    return [Charges.of_row(r) for r in rows]
