"""Blue/green rebuild of the ledger's stream-fed tables (calls, credit notes, the totals on them).

Replays CALLS (`calls.cdr.*`) and BILLING_EVENTS (`CreditNoteIssued`) from their first message
into `<table>__next` (calls by COPY, keyed after; totals summed in memory and copied once), catches up with
the live consumers' statements, then switches over in one transaction: it locks the live tables,
replays what the live consumers applied since, checks nothing shrank, moves every customer's
`seq` past the live one (the dial views take only newer rows) and renames the new tables into
place. The live consumers keep writing by name; a record counts once by call id, a note by id.
Afterwards the customers whose totals changed are announced on LEDGER_CHANGED.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, cast

import asyncpg
import structlog
from nats.js import JetStreamContext
from shared.consumer import Poison
from shared.contracts.wire import WireCallCharge
from shared.money import ZERO, with_tax
from shared.stream_replay import overlap, pending_count, replay, stream_seq
from shared.streams import until_replicas_current

from customer.projections import credit_notes, ledger
from customer.projections import ledger_tables as tables
from customer.projections.ledger import LIVE, Charges, TaxBook, add_call, taxes_at_start
from customer.projections.ledger_tables import NEXT, copy_text

log = structlog.get_logger(__name__)
T = TypeVar("T")

Progress = Callable[[int, int], None]  # (messages read, messages to read)
_CDR = "calls.cdr."
_NOTES = ("events.billing.*.CreditNoteIssued",)
_DEPTH = 3  # batches decoded ahead of the writes
_PREFIX = "ledger-rebuild"  # the replay consumers' names


class LedgerRebuildBusy(RuntimeError):
    """Another ledger rebuild is running."""


class LedgerRebuildRefused(RuntimeError):
    """The rebuilt ledger would lose history; the live tables are kept."""


@dataclass
class LedgerRebuildResult:
    """What a rebuild did."""

    messages: int  # every message read (CALLS' starts too: the stream is read whole)
    records: int  # call records counted (once by call id)
    notes: int
    skipped: int  # malformed (the live consumer dead-letters them)
    seconds: float
    announced: int  # customers whose totals changed
    phases: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages read and applied per second."""
        return self.messages / self.seconds if self.seconds else 0.0


class LedgerRebuilder:
    """Rebuilds the ledger from CALLS and BILLING_EVENTS; the live tables answer until the switch."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, *, batch: int = 5000,
        progress: Progress | None = None, allow_shrink: bool = False, announce: bool = True,
    ) -> None:
        self.pool, self.js, self.batch = pool, js, batch
        self.announce = announce
        self.progress = progress
        self.allow_shrink = allow_shrink
        self.read_to = dict.fromkeys(tables.STREAMS, 0)
        self.done = self.total = self.records = self.notes = self.skipped = 0
        self.warnings: list[str] = []
        self.phases: dict[str, float] = {}
        self._lap_at = self._logged = time.monotonic()

    async def run(self) -> LedgerRebuildResult:
        """Replay, catch up, switch over, announce."""
        started = time.monotonic()
        async with self.pool.acquire() as lock:
            if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtext('customer-ledger-rebuild'))"):
                raise LedgerRebuildBusy("a ledger rebuild is already running")
            try:
                await until_replicas_current(self.js, ["BILLING_EVENTS", "CALLS"])
                self._refuse_or_note(await tables.history_problems(self.js, lock))
                await tables.create_next(lock)
                self._lap("prepare")
                collecting = gc.isenabled()
                gc.disable()  # the replay makes no reference cycles; the collector only costs CPU
                try:
                    await self._bulk()
                finally:
                    if collecting:
                        gc.enable()
                self._lap("replay")
                await tables.index_next(self.pool, (LIVE.credit_notes, LIVE.charges))
                self._lap("index")
                for _ in range(3):
                    if await self._catch_up() < self.batch:
                        break
                self._lap("catch_up")
                changed = await self._switch()
                self._lap("switch")
                if self.announce:
                    for message in tables.announcements(changed):
                        await self.js._nc.publish(ledger.LEDGER_CHANGED, message)
            except BaseException:
                with contextlib.suppress(Exception):  # the live tables are untouched; no copies left
                    await tables.drop_next(lock)
                raise
            finally:
                await lock.execute("SELECT pg_advisory_unlock(hashtext('customer-ledger-rebuild'))")
        result = LedgerRebuildResult(self.done, self.records, self.notes, self.skipped,
                                     time.monotonic() - started, len(changed), dict(self.phases),
                                     list(self.warnings))
        log.info("ledger_rebuild_switched", messages=result.messages, records=result.records,
                 notes=result.notes, skipped=result.skipped, announced=result.announced,
                 seconds=round(result.seconds, 2), phases={k: round(v, 2) for k, v in self.phases.items()})
        return result

    def _refuse_or_note(self, problems: list[str]) -> None:
        if not problems:
            return
        if not self.allow_shrink:
            raise LedgerRebuildRefused(
                "ledger not switched over, the live tables are kept: " + "; ".join(problems)
                + ". Restore the streams (patchbay restore, docs/operations.md), or pass --allow-shrink")
        self.warnings += problems
        log.warning("ledger_rebuild_shrinks", problems=problems)

    def _records(self, msgs: list[Any]) -> list[WireCallCharge]:
        """A batch's call records (call starts are read, not counted), once per call id."""
        cdrs = [m for m in msgs if m.subject.startswith(_CDR)]
        return self._decoded(cdrs, ledger.decode_data, lambda r: r.call_id)

    def _notes(self, msgs: list[Any]) -> list[Any]:
        """A batch's credit notes, once per note id."""
        return self._decoded(msgs, credit_notes.decode_data, lambda n: n.id)

    def _decoded(self, msgs: list[Any], decode: Callable[[bytes], T], key: Callable[[T], str]) -> list[T]:
        """Each message decoded (a poison one counted as skipped), the first of each key kept."""
        found: dict[str, T] = {}
        for msg in msgs:
            try:
                item = decode(msg.data)
            except Poison:
                self.skipped += 1
                continue
            found.setdefault(key(item), item)
        return list(found.values())

    async def _bulk(self) -> None:
        """The first replay: calls by COPY into a table keyed after the load (a call id copied twice:
        the later copy dropped then, its customer's totals summed again), totals summed here and
        copied once at the end."""
        ends = {s: (await self.js.stream_info(s)).state.last_seq for s in self.read_to}
        self.total = (await self.js.stream_info("CALLS")).state.messages
        self.total += await pending_count(self.js, "BILLING_EVENTS", _NOTES, prefix=_PREFIX)
        self._report()
        totals: dict[str, list[Any]] = {}
        notes: dict[str, Decimal] = {}
        async with self.pool.acquire() as conn:
            book = await TaxBook.load(conn)

            async def write(item: tuple[list[WireCallCharge], list[Any]]) -> None:
                if item[0]:  # PostgreSQL writes a batch while the next one is decoded
                    for record, charged in await self._copy_calls(conn, item[0], book):
                        add_call(totals, record, charged)
                self._read(item[1], "CALLS")

            await overlap(self._history("CALLS", (), 1, ends["CALLS"]),
                          lambda msgs: (self._records(msgs), msgs), write, depth=_DEPTH)
            # the calls' key here (their totals need its verdict), their other indexes beside it
            again, _ = await asyncio.gather(tables.key_calls(conn),
                                            tables.index_next(self.pool, (LIVE.calls,), analyze=False))
            if again:  # later copies of a call id were dropped
                log.info("ledger_rebuild_copies_dropped", customers=len(again))
                for customer_id in again:
                    totals.pop(customer_id, None)
                for r in await tables.calls_of(conn, again):
                    call = WireCallCharge(r["call_id"], r["customer_id"], r["started_at"], r["charge"])
                    add_call(totals, call, r["charged"])
            async for msgs in self._history("BILLING_EVENTS", _NOTES, 1, ends["BILLING_EVENTS"]):
                if batch := self._notes(msgs):
                    async with conn.transaction():
                        for row in await conn.fetch(
                                credit_notes.insert_sql(NEXT), credit_notes.rows_json(batch)):
                            notes[row["customer_id"]] = notes.get(row["customer_id"], ZERO) + row["amount"]
                self._read(msgs, "BILLING_EVENTS")
            rows = [(c, *totals.get(c, (ZERO, 0, None, ZERO)), 1, notes.get(c, ZERO))
                    for c in sorted(totals.keys() | notes.keys())]
            await conn.copy_records_to_table(
                NEXT.charges, records=rows,
                columns=["customer_id", "charges", "calls", "day", "day_charges", "seq", "credit_notes"])

    async def _copy_calls(
        self, conn: asyncpg.Connection, records: list[WireCallCharge], book: TaxBook,
    ) -> list[tuple[WireCallCharge, Decimal]]:
        """The batch's calls into the fresh table, each with its charge with tax (a call id copied in
        an earlier batch too is dropped after the load, `tables.key_calls`)."""
        found = [book.at(r.customer_id, r.started_at) for r in records]
        if [t for t in found if t is None]:  # customers the snapshot does not know (new since): as live
            # (not `None in found`: that compares each Decimal with None, 2% of the rebuild's samples)
            asked = await taxes_at_start(conn, [r for r, t in zip(records, found, strict=True) if t is None])
            found = [asked.get(r.call_id, ZERO) if t is None else t
                     for r, t in zip(records, found, strict=True)]
        taxes = cast(list[Decimal], found)
        rows = [(r.call_id, r.customer_id, r.started_at, r.charge, t, with_tax(r.charge, t))
                for r, t in zip(records, taxes, strict=True)]
        # COPY's text format: half the client's CPU of asyncpg's binary records (bench)
        await conn.copy_to_table(NEXT.calls, source=io.BytesIO(copy_text(rows)), columns=[
            "call_id", "customer_id", "started_at", "charge", "tax", "charged"])
        return [(r, row[5]) for r, row in zip(records, rows, strict=True)]

    async def _catch_up(self, conn: Any = None) -> int:
        """What arrived since, written as the live consumers write (into the new tables).

        With `conn` (the switch-over, the live tables locked): up to what the live consumers applied."""
        behind = 0
        marks = await tables.live_marks(conn) if conn is not None else None
        for stream in self.read_to:
            end = marks[stream] if marks is not None else (await self.js.stream_info(stream)).state.last_seq
            start = self.read_to[stream] + 1
            if end < start:
                continue
            subjects = () if stream == "CALLS" else _NOTES
            if marks is None:
                self.total += await pending_count(self.js, stream, subjects, start, prefix=_PREFIX)
            async for msgs in self._history(stream, subjects, start, end):
                behind += len(msgs)
                await self._apply(conn, stream, msgs)
                self._read(msgs, stream)
            self.read_to[stream] = max(self.read_to[stream], end)
        return behind

    async def _apply(self, conn: Any, stream: str, msgs: list[Any]) -> None:
        async def write(c: asyncpg.Connection) -> None:
            if stream == "CALLS":
                if records := self._records(msgs):
                    await ledger.write_calls(c, records, NEXT, None)
            elif notes := self._notes(msgs):
                await credit_notes.write_notes(c, notes, NEXT, None)

        if conn is not None:
            await write(conn)
            return
        async with self.pool.acquire() as c, c.transaction():
            await write(c)

    async def _switch(self) -> list[Charges]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '30s'")
            await conn.execute(f"LOCK TABLE {', '.join(LIVE.names())} IN ACCESS EXCLUSIVE MODE")
            await self._catch_up(conn)
            self.records, self.notes, problems = await tables.sizes(conn)
            self._refuse_or_note(problems)
            changed = await tables.newer_versions(conn)
            await tables.swap(conn)
        return changed

    def _history(self, stream: str, subjects: tuple[str, ...], start: int, end: int,
                 ) -> AsyncIterator[list[Any]]:
        """Batches of the stream's messages, start <= sequence <= end."""
        batches: AsyncIterator[list[Any]] = replay(
            self.js, stream, subjects, start_seq=start, until_seq=end, batch=self.batch, prefix=_PREFIX)
        return batches

    def _read(self, msgs: list[Any], stream: str) -> None:
        self.done += len(msgs)
        self.read_to[stream] = max(self.read_to[stream], stream_seq(msgs[-1]))
        self._report()

    def _report(self) -> None:
        if self.progress:
            self.progress(self.done, max(self.total, self.done))
        if time.monotonic() - self._logged > 5:
            self._logged = time.monotonic()
            log.info("ledger_rebuild_progress", done=self.done, total=max(self.total, self.done))

    def _lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase], self._lap_at = now - self._lap_at, now

