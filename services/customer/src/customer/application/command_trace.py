"""The command worker's cycle: counters (/metrics), and a timeline when PATCHBAY_COMMAND_TRACE names a file.

The timeline is off by default (an `is None` test per batch). On, it records per batch when it was
cut, decided, sent to PostgreSQL, back and answered, with each command's correlation id and
when the RPC callback received it; and beside them the collector's runs, the outbox relay's
passes, nats-py's socket writes and the loop's stalls (a 1 ms ticker that came late). All times
are `time.perf_counter()` (CLOCK_MONOTONIC on Linux: comparable with the bench client's).
`bench/commands_trace.py` joins it with the client's own timeline.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

import orjson
from prometheus_client import Counter

_now = time.perf_counter

# the worker's cycle, per batch (not per command): how large its batches are and how much of its
# time goes to waiting on the append's statement (bench/commands.py prints both)
BATCHES = Counter("patchbay_command_batches_total", "Batches of commands the command workers ran")
BATCHED = Counter("patchbay_command_batched_total", "Commands the command workers ran in batches")
BATCH_SECONDS = Counter("patchbay_command_batch_seconds_total", "Wall seconds the workers spent in batches")
APPEND_SECONDS = Counter("patchbay_command_append_wait_seconds_total",
                         "Wall seconds the workers awaited their appends' statements (the round trip)")


def batch_done(size: int, started: float) -> None:
    """Count one batch of `size` commands begun at `started` (perf_counter)."""
    BATCHES.inc()
    BATCHED.inc(size)
    BATCH_SECONDS.inc(_now() - started)


class CommandTrace:
    """Collects the rows in memory and appends them to its file once a second."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[Any] = []
        self._gc_started = 0.0

    def batch(self, marks: list[float], batch: list[Any]) -> None:
        """One batch: its marks (cut, append called, append returned, replies published) and its commands."""
        self.rows.append(["batch", marks, [
            [p.command.meta.correlation_id, getattr(p.answer, "started", None)] for p in batch]])

    def install(self, *, store: Any = None, relay: Any = None, nc: Any = None) -> None:
        """Hook the collector, the relay's passes, the pool's statements and nats-py's writes."""
        gc.callbacks.append(self._gc)
        if relay is not None:
            leader = relay._leader
            work = leader.work

            async def timed_pass(conn: Any) -> int:
                started = _now()
                count: int = await work(conn)
                self.rows.append(["relay", started, _now(), count])
                return count

            leader.work = timed_pass
        if store is not None:
            store.pool = _TimedPool(store.pool, self.rows)
        if nc is not None:
            self._nc = nc

    def _hook_transport(self) -> None:
        transport = getattr(getattr(self, "_nc", None), "_transport", None)
        if transport is None or getattr(transport, "_traced", False):
            return
        writelines = transport.writelines

        def timed_writelines(data: Any) -> None:
            self.rows.append(["write", _now(), sum(len(d) for d in data)])
            writelines(data)

        transport.writelines = timed_writelines
        transport._traced = True

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started, self._gc_cpu = _now(), time.process_time()
        else:
            self.rows.append(["gc", self._gc_started, _now(), info["generation"], info["collected"],
                              time.process_time() - self._gc_cpu, gc.get_count()])

    async def run(self) -> None:
        """Tick every millisecond (a late tick is a stalled loop); write the rows every second."""
        last_write = _now()
        while True:
            self._hook_transport()
            before = _now()
            await asyncio.sleep(0.001)
            after = _now()
            if after - before > 0.003:
                self.rows.append(["stall", before, after])
            if after - last_write > 1.0:
                self._write()
                last_write = after

    def _write(self) -> None:
        rows = self.rows[:]
        del self.rows[:]
        with open(self.path, "ab") as out:
            out.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def from_environment() -> CommandTrace | None:
    """The trace PATCHBAY_COMMAND_TRACE asks for, or None."""
    path = os.environ.get("PATCHBAY_COMMAND_TRACE")
    return CommandTrace(path) if path else None


class _TimedPool:
    """The store's pool, its `fetch` statements timed (the append's round trip, the loads)."""

    def __init__(self, pool: Any, rows: list[Any]) -> None:
        self._pool, self._rows = pool, rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def fetch(self, sql: str, *args: Any, **kw: Any) -> Any:
        started = _now()
        try:
            return await self._pool.fetch(sql, *args, **kw)
        finally:
            self._rows.append(["fetch", started, _now(), sql[:40]])
