"""One leader among replicas: a PostgreSQL advisory lock, then work whenever woken.

Both relays (`shared.outbox_relay`, `shared.message_outbox`) run this loop: a connection of
their own (search_path = the schema), `pg_try_advisory_lock` polled until free, LISTEN on a
channel, then `work(conn)` in batches until a batch comes back short, waiting for a NOTIFY or
the poll interval between rounds. A lost connection drops the lead; the loop retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)

Work = Callable[[asyncpg.Connection], Awaitable[int]]


class LeaderLoop:
    """Runs `work` while holding `lock_key`; one process per lock key does at a time."""

    def __init__(
        self, *, name: str, dsn: str, schema: str, lock_key: str, channel: str, work: Work,
        batch_size: int, poll_interval_s: float = 1.0, settings: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.dsn = dsn
        self.schema = schema
        self.lock_key = lock_key
        self.channel = channel
        self.work = work
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.settings = settings or {}  # more server settings of the leader's connection
        self.is_leader = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a round now (a commit just happened)."""
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled: take the lead when free, work whenever woken."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.is_leader = False
                log.warning(f"{self.name}_retrying", error=str(exc), schema=self.schema)
                await asyncio.sleep(self.poll_interval_s)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings={**self.settings, "search_path": self.schema})
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.lock_key):
                await asyncio.sleep(self.poll_interval_s)
            self.is_leader = True
            log.info(f"{self.name}_leading", schema=self.schema)
            await conn.add_listener(self.channel, lambda *_: self._wake.set())
            while True:
                self._wake.clear()
                while await self.work(conn) == self.batch_size:
                    pass
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()
