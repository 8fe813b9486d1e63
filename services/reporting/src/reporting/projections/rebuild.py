"""Blue/green rebuild: replay the streams into `<table>__next`, catch up, switch over by rename.

The old tables keep answering the whole time. The switch-over is one transaction: it locks the
live tables (waiting for the batch statement in flight, holding back the next), writes into the
new tables whatever the live consumer applied past the rebuild's checkpoints, then drops the
old tables and renames the new ones (and their indexes) into place. The live consumers go on
writing into the new tables by name; their writes are idempotent by natural key.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError
from shared.stream_replay import overlap, pending_count, replay, stream_seq
from shared.streams import until_replicas_current

from reporting.projections.base import NEXT, Projection, Source, Tables, checkpoints
from reporting.projections.bulk_codecs import bulk_codecs, reset_bulk_codecs
from reporting.projections.rebuild_guards import history_problems, refusal, shrink_problems
from reporting.projections.rebuild_tables import create_next, switch_in
from reporting.projections.split import SPLIT_MIN, Connect, Worker

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]  # (done, total)
Decoder = Callable[[str, int, str, bytes], Any]  # (stream, seq, subject, data) -> item
_QUEUE_DEPTH = 4


class RebuildBusy(RuntimeError):
    """Another rebuild of this projection is running."""


@dataclass
class RebuildResult:
    """What a rebuild did."""

    projection: str
    events: int
    skipped: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds: prepare, replay, catch-up, index...

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds else 0.0


class Rebuilder:
    """Rebuilds one projection from its streams."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, projection: Projection[Any], *,
        batch: int = 5000, progress: Progress | None = None, allow_shrink: bool = False,
        split: Connect | None = None,
    ) -> None:
        self.pool = pool
        self.js = js
        self.projection = projection
        self.batch = batch
        self.progress = progress
        self.allow_shrink = allow_shrink
        self.split = split  # a second process replays the upper half of a long stream (split.py)
        self.warnings: list[str] = []  # what --allow-shrink let through
        self._read_to: dict[str, int] = {}  # per stream: read through here (applied or skipped)
        self.live = Tables.live(projection.tables)
        self.next = Tables.next(projection.tables)
        self.done = 0
        self.total = 0
        self.skipped = 0
        self._recorded = 0.0
        self._indexes: list[str] = []
        self._options: dict[str, list[str]] = {}  # per live table: its storage options (reloptions)
        self.phases: dict[str, float] = {}  # seconds per phase (prepare, replay, catch-up, index, switch)
        self._lap_at = time.monotonic()
        self._worker: Worker | None = None
        # the progress row is written on the advisory lock's connection, held for the whole run:
        # a second pooled connection taken under the switch-over's table lock could wait forever
        # for a pool whose other connections all wait on that lock (a shared pool hung so)
        self._status_conn: asyncpg.Connection | None = None

    async def run(self) -> RebuildResult:
        """Replay, catch up, switch over; the old tables answer until the switch."""
        started = time.monotonic()
        async with self.pool.acquire() as lock_conn:
            key = f"reporting-rebuild:{self.projection.name}"
            if not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                raise RebuildBusy(f"a rebuild of {self.projection.name} is already running")
            self._status_conn = lock_conn
            try:
                await self._record("running", started=True)
                self._worker = await self._start_worker()
                await until_replicas_current(self.js, sorted({s.stream for s in self.projection.sources}))
                if problems := await history_problems(self.js, self.pool, self.projection):
                    self._refuse_or_note(problems)
                await self._create_next()
                self._lap("prepare")
                try:
                    await self._replay_all()
                finally:
                    if self._worker is not None:
                        await self._worker.close()
                self._lap("replay")
                await self._catch_up()
                self._lap("catch-up")
                await self._index_next()
                await self._catch_up(rounds=1)
                self._lap("index")
                await self._switch()
                self._lap("switch")
                await self._record("switched", finished=True)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await self._record("failed", finished=True, error=f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self._status_conn = None
                await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
        result = RebuildResult(self.projection.name, self.done, self.skipped, time.monotonic() - started,
                               dict(self.phases))
        log.info("rebuild_switched", projection=result.projection, events=result.events,
                 skipped=result.skipped, seconds=round(result.seconds, 2),
                 phases={k: round(v, 2) for k, v in result.phases.items()})
        return result

    async def _create_next(self) -> None:
        """The copies, without secondary indexes (built once after the load) and without the
        primary keys the projection adds after its first replay itself (rebuild_tables.py)."""
        self._indexes = []
        async with self.pool.acquire() as conn, conn.transaction():
            for table in self.projection.tables:
                indexes, self._options[table] = await create_next(
                    conn, table, keyed=table not in self.projection.bulk_unkeyed)
                self._indexes += indexes

    async def _index_next(self) -> None:
        """The secondary indexes side by side, then the planner's statistics of each table side by
        side, before the switch-over's lock (this process idles meanwhile: PostgreSQL has both cores;
        one after the other they were ~18% of a 100k-event audit rebuild's seconds). ANALYZE and
        CREATE INDEX of one table exclude each other (SHARE UPDATE EXCLUSIVE against SHARE), so
        starting them together gains nothing: the indexes go first, two cores' worth of work."""

        async def run(sql: str) -> None:
            async with self.pool.acquire() as conn:
                await conn.execute(sql)

        await asyncio.gather(*(run(sql) for sql in self._indexes))
        await asyncio.gather(*(run(f"ANALYZE {table}{NEXT}") for table in self.projection.tables))

    async def _replay_all(self) -> None:
        targets = {}
        counts = {}
        for source in self.projection.sources:
            targets[source.stream] = (await self.js.stream_info(source.stream)).state.last_seq
            counts[source.stream] = await pending_count(self.js, source.stream, source.replay_subjects, 1)
        self.total += sum(counts.values())
        self._report()
        collecting = gc.isenabled()
        gc.disable()  # the replay makes no cycles; the collector took ~8% of its CPU (py-spy)
        try:
            async with self.pool.acquire() as conn:
                await bulk_codecs(conn)
                try:
                    for source in self.projection.sources:
                        if counts[source.stream] >= SPLIT_MIN and self._worker is not None:
                            await self._replay_split(source, targets[source.stream], conn)
                        elif counts[source.stream] or targets[source.stream]:
                            # by the leader's last sequence too: a count taken by a consumer on a
                            # replica behind may say 0 (the replay checks its end with the leader)
                            await self._replay(source, 1, targets[source.stream], conn, bulk=True)
                    await self.projection.bulk_finish(conn, self.next)
                finally:
                    await reset_bulk_codecs(conn)
        finally:
            if collecting:
                gc.enable()

    async def _start_worker(self) -> Worker | None:
        """The second process, when the projection may be split and a stream is long enough."""
        if self.split is None or not self.projection.bulk_split:
            return None
        for source in self.projection.sources:
            if (await self.js.stream_info(source.stream)).state.messages >= SPLIT_MIN:
                return await Worker.start(self.split, self.projection)
        return None

    async def _replay_split(self, source: Source, until: int, conn: asyncpg.Connection) -> None:
        """The lower half here, the upper half in the second process, at the same time."""
        assert self._worker is not None
        middle = until // 2

        def progress(done: int, skipped: int) -> None:
            self.done += done
            self.skipped += skipped
            self._report()

        worker = self._worker
        upper = asyncio.create_task(worker.replay(source.stream, middle + 1, until, self.batch, progress))
        try:
            await self._replay(source, 1, middle, conn, bulk=True)
            await upper
        finally:
            if not upper.done():
                upper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upper
        self._read_to[source.stream] = max(self._read_to.get(source.stream, 0), until)

    async def _catch_up(self, rounds: int = 3) -> None:
        """Read what arrived during the replay, so the switch-over has little left to do."""
        for _ in range(rounds):
            done = await checkpoints(self.pool, self.projection, self.next)
            behind = 0
            for source in self.projection.sources:
                last = (await self.js.stream_info(source.stream)).state.last_seq
                start = done.get(source.stream, 0) + 1
                if last < start:
                    continue
                start = max(start, self._read_to.get(source.stream, 0) + 1)  # skipped ones: not again
                if last < start:
                    continue
                n = await pending_count(self.js, source.stream, source.replay_subjects, start)
                if n:
                    self.total += n
                    behind += n
                    await self._replay(source, start, last, self.pool)
            if behind < self.batch:
                return

    async def _switch(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '30s'")
            await conn.execute(
                f"LOCK TABLE {', '.join(self.projection.tables)} IN ACCESS EXCLUSIVE MODE"
            )
            live = await checkpoints(conn, self.projection, self.live)
            done = await checkpoints(conn, self.projection, self.next)
            for source in self.projection.sources:
                start = max(done.get(source.stream, 0), self._read_to.get(source.stream, 0)) + 1
                if live.get(source.stream, 0) >= start:
                    await self._replay(source, start, live[source.stream], conn)
            if problems := await shrink_problems(conn, self.projection, self.live, self.next):
                self._refuse_or_note(problems)
            for table in self.projection.tables:
                await switch_in(conn, table, self._options.get(table, []))

    async def _replay(self, source: Source, start: int, until: int, conn: Any, *, bulk: bool = False) -> None:
        """Decode in this task while the previous batch is written (PostgreSQL works meanwhile).

        `bulk`: the first replay into the fresh tables, by the projection's `bulk_write` (COPY)."""
        write_batch = self.projection.bulk_write if bulk else self.projection.write
        decode = self.projection.bulk_decode if bulk else self.projection.decode

        def prepare(msgs: list[Msg]) -> tuple[list[Any], int, int]:
            return (*self._decode(source.stream, msgs, decode), len(msgs))

        async def write(item: tuple[list[Any], int, int]) -> None:
            items, last, count = item
            if items:
                await write_batch(conn, self.next, source.stream, items, last)
            self.done += count
            self._report()
            if time.monotonic() - self._recorded > 1.0:
                await self._record("running")

        self._read_to[source.stream] = max(self._read_to.get(source.stream, 0), until)
        await overlap(replay(self.js, source.stream, source.replay_subjects, start_seq=start,
                             until_seq=until, batch=self.batch), prepare, write, depth=_QUEUE_DEPTH)
        self._report()
        await self._record("running")

    def _decode(self, stream: str, msgs: list[Msg], decode: Decoder) -> tuple[list[Any], int]:
        items = []
        last = 0
        for msg in msgs:
            seq = stream_seq(msg)
            try:
                items.append(decode(stream, seq, msg.subject, msg.data))
            except (ValidationError, ValueError, UnicodeDecodeError):
                self.skipped += 1  # the live consumer dead-lettered it; skip it here too
                continue
            last = seq  # the checkpoint is the last message applied, as the live consumer's is
        return items, last

    def _lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = now - self._lap_at
        self._lap_at = now

    def _refuse_or_note(self, problems: list[str]) -> None:
        if not self.allow_shrink:
            raise refusal(self.projection.name, problems)
        self.warnings += problems
        log.warning("rebuild_shrinks", projection=self.projection.name, problems=problems)

    def _report(self) -> None:
        if self.progress:
            self.progress(self.done, max(self.total, self.done))

    async def _record(
        self, state: str, *, started: bool = False, finished: bool = False, error: str | None = None
    ) -> None:
        self._recorded = time.monotonic()
        with contextlib.suppress(Exception):
            await (self._status_conn or self.pool).execute(
                "INSERT INTO rebuilds (projection, state, started_at, updated_at, done, total, error)"
                " VALUES ($1, $2, now(), now(), $3, $4, $5) ON CONFLICT (projection) DO UPDATE SET"
                " state = excluded.state, updated_at = now(), done = excluded.done,"
                " total = excluded.total, error = excluded.error,"
                " started_at = CASE WHEN $6 THEN now() ELSE rebuilds.started_at END,"
                " finished_at = CASE WHEN $7 THEN now() WHEN $6 THEN NULL ELSE rebuilds.finished_at END",
                self.projection.name, state, self.done, max(self.total, self.done), error, started,
                finished,
            )
