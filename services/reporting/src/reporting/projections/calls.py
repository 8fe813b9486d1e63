"""Call summaries: records once each by call id, hourly sums in UTC, calls in progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from shared.contracts.wire import WireCallRecord, WireCallStarted, call_record_of, call_started_of

from reporting.projections.base import Projection, Source, Tables, key_after_load

CallItem = tuple[int, WireCallStarted | WireCallRecord]

_RECORD_TYPES = (
    ("call_id", "text"), ("customer_id", "text"), ("started_at", "timestamptz"),
    ("answered_at", "timestamptz"), ("ended_at", "timestamptz"), ("disposition", "text"),
    ("sip_code", "int"), ("duration_s", "int"), ("billed_duration_s", "int"),
    ("charge", "numeric"), ("cost", "numeric"), ("pdd_ms", "int"), ("seq", "bigint"),
)
_RECORD_COLUMNS = ", ".join(c for c, _ in _RECORD_TYPES)
# the batch's JSON document names each field by one letter: a third fewer bytes to send and parse
_KEYS = "abcdefghijklm"
_SUMS = ("attempts", "connected", "duration_s", "billed_duration_s", "charge", "cost",
         "pdd_ms_sum", "pdd_samples")
# the UTC hour by integer arithmetic (date_trunc with a time zone converts each value; same result)
_HOUR = "date_bin('1 hour', started_at, timestamptz '1970-01-01 00:00:00+00')"


def _write_sql(t: Tables, checkpoint: str) -> str:
    """One statement: new records, their hourly sums, calls in progress, the checkpoint."""
    record = ", ".join(f"{k} {typ}" for k, (_, typ) in zip(_KEYS, _RECORD_TYPES, strict=True))
    named = ", ".join(f"{k} AS {c}" for k, (c, _) in zip(_KEYS, _RECORD_TYPES, strict=True))
    add = ", ".join(f"{c} = {t['call_hours']}.{c} + excluded.{c}" for c in _SUMS)
    return (
        f"WITH input AS (SELECT {named} FROM json_to_recordset($1::json) AS r({record})),"
        f" new AS (INSERT INTO {t['call_records']} ({_RECORD_COLUMNS}) SELECT * FROM input"
        f"  ON CONFLICT (call_id) DO NOTHING"
        f"  RETURNING customer_id, started_at, disposition, duration_s, billed_duration_s, charge, cost,"
        f"  pdd_ms),"
        f" hours AS (INSERT INTO {t['call_hours']} (customer_id, hour, {', '.join(_SUMS)})"
        f"  SELECT customer_id, {_HOUR}, count(*),"
        f"  count(*) FILTER (WHERE disposition = 'answered'), sum(duration_s), sum(billed_duration_s),"
        f"  sum(charge), sum(cost), coalesce(sum(pdd_ms), 0), count(pdd_ms)"
        f"  FROM new GROUP BY 1, 2 ORDER BY 1, 2"
        f"  ON CONFLICT (customer_id, hour) DO UPDATE SET {add}),"
        f" ended AS (DELETE FROM {t['live_calls']} WHERE call_id IN (SELECT call_id FROM input)),"
        f" started AS (INSERT INTO {t['live_calls']} (call_id, customer_id, started_at)"
        f"  SELECT s.call_id, s.customer_id, s.started_at"
        f"  FROM json_to_recordset($2::json) AS s(call_id text, customer_id text, started_at timestamptz)"
        f"  WHERE s.call_id NOT IN (SELECT call_id FROM input) AND NOT EXISTS"
        f"  (SELECT 1 FROM {t['call_records']} r WHERE r.call_id = s.call_id)"
        f"  ON CONFLICT (call_id) DO NOTHING),"
        f" c AS ({checkpoint}) SELECT count(*) FROM new"
    )


class CallsProjection(Projection[CallItem]):
    """Summaries from stream CALLS: `calls.started.<customer_id>` and `calls.cdr.<customer_id>`."""

    name = "summaries"
    tables = ("call_records", "call_hours", "live_calls", "calls_checkpoints")
    checkpoint_table = "calls_checkpoints"
    # starts and records: one filter per partition; one ack per batch (call records are many)
    sources = (Source("CALLS", ("calls.*.*",), whole=True, ack_all=True),)
    bulk_unkeyed = ("call_records", "call_hours")
    state_tables = ("live_calls",)

    def decode(self, stream: str, seq: int, subject: str, data: bytes) -> CallItem:
        """A start or a record, by subject."""
        if subject.startswith("calls.cdr."):
            return seq, call_record_of(data)  # msgspec: ~6x pydantic's CallRecord here
        if subject.startswith("calls.started."):
            return seq, call_started_of(data)
        raise ValueError(f"not a call subject: {subject}")

    async def write(
        self, conn: asyncpg.Connection | asyncpg.Pool, tables: Tables, stream: str,
        items: Sequence[CallItem], last_seq: int,
    ) -> int:
        """Write a batch; return how many records were new (duplicates count once)."""
        records, starts = _split(items)
        rows = orjson.dumps([
            {"a": r.call_id, "b": r.customer_id, "c": r.started_at, "d": r.answered_at, "e": r.ended_at,
             "f": r.disposition, "g": r.sip_code, "h": r.duration_s, "i": r.billed_duration_s,
             "j": str(r.charge), "k": str(r.cost), "l": r.pdd_ms, "m": seq}
            for seq, r in records.values()
        ]).decode()
        started = orjson.dumps([
            {"call_id": x.call_id, "customer_id": x.customer_id, "started_at": x.started_at}
            for x in starts.values()
        ]).decode()
        sql = _write_sql(tables, self.checkpoint_sql(tables, 3, 4))
        new: int = await conn.fetchval(sql, rows, started, stream, last_seq)
        return new

    async def bulk_write(
        self, conn: asyncpg.Connection, tables: Tables, stream: str, items: Sequence[CallItem], last_seq: int,
    ) -> None:
        """COPY records and starts with the checkpoint (keys, hourly sums, ended calls: `bulk_finish`).

        Records go into a table without its key (no look-up per row; a call id seen twice is resolved
        once at the end). A start whose call id is already in progress fails the COPY; the batch then
        goes in again with the starts by INSERT ... ON CONFLICT DO NOTHING, which keeps the first.
        """
        records, starts = _split(items)
        rows = [(r.call_id, r.customer_id, r.started_at, r.answered_at, r.ended_at, r.disposition, r.sip_code,
                 r.duration_s, r.billed_duration_s, r.charge, r.cost, r.pdd_ms, seq)
                for seq, r in records.values()]
        started = [(x.call_id, x.customer_id, x.started_at) for x in starts.values()]
        checkpoint = self.checkpoint_sql(tables, 1, 2)
        try:
            async with conn.transaction():
                await _copy(conn, tables, rows, started)
                await conn.execute(checkpoint, stream, last_seq)
        except asyncpg.UniqueViolationError:
            async with conn.transaction():
                await _copy(conn, tables, rows, [])
                values = ", ".join(f"${i + 1}" for i in range(len(_STARTED_NAMES)))
                await conn.executemany(f"INSERT INTO {tables['live_calls']} ({', '.join(_STARTED_NAMES)})"
                                       f" VALUES ({values}) ON CONFLICT DO NOTHING", started)
                await conn.execute(checkpoint, stream, last_seq)

    async def bulk_finish(self, conn: asyncpg.Connection, tables: Tables) -> None:
        """Key the records (a call id seen twice keeps its first record, as live does), then the
        hourly sums of every record (keyed after they are in) and no call in progress that has its record."""
        t = tables["call_records"]
        await key_after_load(conn, "call_records", t,
                             f"DELETE FROM {t} a USING {t} b WHERE a.call_id = b.call_id AND a.seq > b.seq")
        async with conn.transaction():
            await conn.execute(
                f"INSERT INTO {tables['call_hours']} (customer_id, hour, {', '.join(_SUMS)})"
                f" SELECT customer_id, {_HOUR}, count(*),"
                f" count(*) FILTER (WHERE disposition = 'answered'), sum(duration_s), sum(billed_duration_s),"
                f" sum(charge), sum(cost), coalesce(sum(pdd_ms), 0), count(pdd_ms)"
                f" FROM {t} GROUP BY 1, 2")
            await conn.execute(f"DELETE FROM {tables['live_calls']} l USING {t} r"
                               " WHERE l.call_id = r.call_id")
        # one row per (customer, hour) by the GROUP BY: no duplicate to delete
        await key_after_load(conn, "call_hours", tables["call_hours"], "SELECT 1")


_RECORD_NAMES = [c for c, _ in _RECORD_TYPES]
_STARTED_NAMES = ["call_id", "customer_id", "started_at"]


Records = dict[str, tuple[int, WireCallRecord]]


def _split(items: Sequence[CallItem]) -> tuple[Records, dict[str, WireCallStarted]]:
    """Records and starts of a batch, the first of each call id."""
    records: Records = {}
    starts: dict[str, WireCallStarted] = {}
    for seq, item in items:
        if isinstance(item, WireCallRecord):
            records.setdefault(item.call_id, (seq, item))
        else:
            starts.setdefault(item.call_id, item)
    return records, starts


async def _copy(conn: asyncpg.Connection, tables: Tables, rows: list[tuple[Any, ...]],
                started: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table(tables["call_records"], records=rows, columns=_RECORD_NAMES)
    if started:
        await conn.copy_records_to_table(tables["live_calls"], records=started, columns=_STARTED_NAMES)

