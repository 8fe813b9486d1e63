"""The ledger rebuild's table work: fresh `__next` tables, the guards, the switch-over by rename."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import orjson
from nats.js import JetStreamContext

from customer.projections import credit_notes
from customer.projections.ledger import LIVE, Charges, LedgerTables

NEXT = LedgerTables(*(f"{t}__next" for t in (LIVE.calls, LIVE.charges, LIVE.credit_notes)))
STREAMS = ("CALLS", "BILLING_EVENTS")
_KEYS = {LIVE.calls: "call_id", LIVE.credit_notes: "id", LIVE.charges: "customer_id"}
_ANNOUNCE = 1000  # customers per LEDGER_CHANGED message
_JSON = msgspec.json.Encoder(decimal_format="string")  # datetimes as RFC 3339 (PostgreSQL reads them)
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


async def create_next(conn: asyncpg.Connection) -> None:
    """Empty copies with their primary keys (the writes' ON CONFLICT needs them from the first row),
    but the calls': their bulk load is COPY into a table without one, keyed after (`key_calls`)."""
    async with conn.transaction():
        for live, new in zip(LIVE.names(), NEXT.names(), strict=True):
            await conn.execute(f"DROP TABLE IF EXISTS {new}")
            await conn.execute(f"CREATE TABLE {new} (LIKE {live} INCLUDING DEFAULTS)")
            if live != LIVE.calls:
                await conn.execute(f"ALTER TABLE {new} ADD PRIMARY KEY ({_KEYS[live]})")


async def key_calls(conn: asyncpg.Connection) -> list[str]:
    """The copied calls' primary key, after their bulk load (PostgreSQL's CPU for COPY without the
    key 1.1 µs a row against 3.0 with it; built at once: 0.55). A call id copied twice (sent again,
    in a later batch): the first copy in the stream is kept, as live keeps it (the fresh table's
    physical order is the order of the COPYs: nothing was deleted or updated in it); returned: the
    customers whose later copies were dropped (their totals are to be summed again).

    The key's index is built by CREATE UNIQUE INDEX (a SHARE lock: the other indexes of the table
    may be built beside it, `index_next`), then made the primary key (a moment's lock)."""
    index = f"{NEXT.calls}_pkey"  # the switch-over renames it to the live key's name

    async def key() -> None:
        async with conn.transaction():
            await conn.execute(f"CREATE UNIQUE INDEX {index} ON {NEXT.calls} (call_id)")
            await conn.execute(f"ALTER TABLE {NEXT.calls} ADD CONSTRAINT {index}"
                               f" PRIMARY KEY USING INDEX {index}")

    try:
        await key()
        return []
    except asyncpg.UniqueViolationError:
        pass
    dropped = await conn.fetch(
        f"DELETE FROM {NEXT.calls} d USING (SELECT call_id, min(ctid) AS first FROM {NEXT.calls}"
        " GROUP BY call_id HAVING count(*) > 1) f WHERE d.call_id = f.call_id AND d.ctid <> f.first"
        " RETURNING d.customer_id")
    await key()
    return sorted({r[0] for r in dropped})


async def calls_of(conn: asyncpg.Connection, customers: list[str]) -> list[asyncpg.Record]:
    """The copied calls of these customers (their totals summed again after `key_calls`)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT call_id, customer_id, started_at, charge, charged FROM {NEXT.calls}"
        " WHERE customer_id = ANY($1::text[])", customers)
    return rows


async def drop_next(conn: asyncpg.Connection) -> None:
    """The copies of a rebuild that did not switch over."""
    for new in NEXT.names():
        await conn.execute(f"DROP TABLE IF EXISTS {new}")


async def index_next(
    pool: asyncpg.Pool, live: tuple[str, ...] = LIVE.names(), *, analyze: bool = True,
) -> None:
    """The live tables' other indexes on these copies, built once after the load, then (`analyze`)
    every copy's planner statistics: each on a connection of its own, side by side (PostgreSQL gets
    both cores; ANALYZE is no longer in the switch-over's lock: the catch-up adds next to nothing)."""

    async def run(sql: str) -> None:
        async with pool.acquire() as conn:
            await conn.execute(sql)

    statements = []
    for table in live:
        new = f"{table}__next"
        for name, sql in await pool.fetch(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c"
                " ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND NOT i.indisprimary", table):
            sql = sql.replace(f"INDEX {name} ON", f"INDEX {name}__next ON", 1)
            on_table = rf"( ON (?:ONLY )?(?:\S+\.)?){re.escape(table)} "
            statements.append(re.sub(on_table, rf"\g<1>{new} ", sql, count=1))
    await asyncio.gather(*(run(sql) for sql in statements))
    if analyze:
        await asyncio.gather(*(run(f"ANALYZE {new}") for new in NEXT.names()))


async def live_marks(conn: Any) -> dict[str, int]:
    """The last sequence of each stream any live partition applied (its checkpoints)."""
    marks = dict.fromkeys(STREAMS, 0)
    for consumer, seq in await conn.fetch("SELECT consumer, seq FROM ledger_checkpoints"):
        stream = "BILLING_EVENTS" if consumer.startswith(credit_notes.SPEC.durable) else "CALLS"
        marks[stream] = max(marks[stream], seq)
    return marks


async def history_problems(js: JetStreamContext, conn: Any) -> list[str]:
    """Why the streams cannot give back what the live ledger holds (empty: they can)."""
    live = await live_marks(conn)
    problems = []
    for stream in STREAMS:
        state = (await js.stream_info(stream)).state
        if state.first_seq > 1:
            problems.append(f"stream {stream} starts at sequence {state.first_seq}: "
                            f"messages 1-{state.first_seq - 1} are gone")
        if live[stream] > state.last_seq:
            problems.append(f"stream {stream} ends at sequence {state.last_seq}, but the live ledger "
                            f"applied up to {live[stream]}: the stream was replaced")
    return problems


async def sizes(conn: asyncpg.Connection) -> tuple[int, int, list[str]]:
    """Calls and notes rebuilt, and the tables the rebuild made smaller than the live ones."""
    problems, counts = [], []
    for live, new in ((LIVE.calls, NEXT.calls), (LIVE.credit_notes, NEXT.credit_notes)):
        before = await conn.fetchval(f"SELECT count(*) FROM {live}")
        counts.append(after := await conn.fetchval(f"SELECT count(*) FROM {new}"))
        if after < before:
            problems.append(f"{live}: {after:,} rows rebuilt against {before:,} live")
    return counts[0], counts[1], problems


async def newer_versions(conn: asyncpg.Connection) -> list[Charges]:
    """Each rebuilt total one `seq` past the live one (dial views take only newer versions);
    the customers whose totals differ from the live ones."""
    await conn.execute(f"UPDATE {NEXT.charges} n SET seq = l.seq + 1 FROM {LIVE.charges} l"
                       " WHERE l.customer_id = n.customer_id")
    return [Charges.of_row(r) for r in await conn.fetch(
        "SELECT n.customer_id, n.charges, n.day, n.day_charges, n.seq, n.credit_notes"
        f" FROM {NEXT.charges} n LEFT JOIN {LIVE.charges} l USING (customer_id)"
        " WHERE l.customer_id IS NULL OR (n.charges, n.calls, n.day, n.day_charges, n.credit_notes)"
        " IS DISTINCT FROM (l.charges, l.calls, l.day, l.day_charges, l.credit_notes)")]


async def swap(conn: asyncpg.Connection) -> None:
    """The copies replace the live tables, names and indexes too (in the caller's transaction;
    analyzed before, by `index_next`)."""
    for live, new in zip(LIVE.names(), NEXT.names(), strict=True):
        await conn.execute(f"DROP TABLE {live}")
        await conn.execute(f"ALTER TABLE {new} RENAME TO {live}")
        for (index,) in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = $1 AND indexname LIKE '%\\_\\_next%'", live):
            await conn.execute(f'ALTER INDEX "{index}" RENAME TO "{index.replace("__next", "")}"')


def copy_text(rows: list[tuple[str, str, datetime, Decimal, Decimal, Decimal]]) -> bytes:
    """Rows of `ledger_calls` in COPY's text format (ids escaped where they must be).

    The batch is written by msgspec as one JSON array of arrays of strings (C speed: 0.7 µs a row
    against 3.8 for Python's formatting of the datetime and the three numbers) and the JSON's
    punctuation replaced by tabs and newlines; when a value needs an escape (JSON's backslash),
    each row is formatted and escaped on its own. A number may come out in exponent form (`0E-7`:
    a call of no charge with 7.5% tax): PostgreSQL's numeric input reads it as the same value and
    scale as the plain form (`0.0000000`)."""
    raw = _JSON.encode(rows)
    if b"\\" not in raw:
        body = raw[3:-3].replace(b'","', b"\t").replace(b'"],["', b"\n") + b"\n" if rows else b""
        if body.count(b"\t") == 5 * len(rows) and body.count(b"\n") == len(rows):
            return body
    return "".join(
        f"{c.translate(_ESCAPE)}\t{k.translate(_ESCAPE)}\t{t.isoformat()}\t{a:f}\t{x:f}\t{w:f}\n"
        for c, k, t, a, x, w in rows).encode()


def announcements(changed: list[Charges]) -> list[bytes]:
    """LEDGER_CHANGED messages for the changed customers (the dial views of every replica)."""
    return [orjson.dumps([c.item() for c in changed[i:i + _ANNOUNCE]])
            for i in range(0, len(changed), _ANNOUNCE)]
