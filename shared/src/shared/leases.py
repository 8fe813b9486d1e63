"""Partition leases: at most one process reads a customer partition, whatever the configuration.

Replicas are told which partitions are theirs (PATCHBAY_REPLICA_INDEX / _COUNT). Two processes
configured alike (two customer pods left at the default 1-of-1, a replica started twice) would
read the same durables and rewind them under each other. So the reader of a partition holds a
PostgreSQL session advisory lock named after its durable: the first process takes it, the others
wait as hot standbys and take over when its session ends (the process died, or lost PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

log = structlog.get_logger(__name__)


class PartitionLeases:
    """Session advisory locks on one connection of their own."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._held: set[str] = set()
        self._guard = asyncio.Lock()

    def _alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def claim(self, name: str) -> bool:
        """Take the lease of `name` if nobody holds it (True also when this process already does)."""
        async with self._guard:
            if not self._alive():
                self._held.clear()  # a lost session released every lease it had
                self._conn = await asyncpg.connect(self.dsn)
            if name in self._held:
                return True
            assert self._conn is not None
            if await self._conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name):
                self._held.add(name)
                return True
            return False

    def holds(self, name: str) -> bool:
        """True while this process's session (and so its lease of `name`) is alive."""
        return name in self._held and self._alive()

    async def release(self, name: str) -> None:
        """Give a lease back (a stopping reader hands its partition over at once)."""
        async with self._guard:
            if name in self._held and self._alive():
                assert self._conn is not None
                with contextlib.suppress(Exception):
                    await self._conn.fetchval("SELECT pg_advisory_unlock(hashtextextended($1, 0))", name)
            self._held.discard(name)

    async def close(self) -> None:
        """End the session: every lease goes."""
        self._held.clear()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)
            if not self._conn.is_closed():
                self._conn.terminate()
            self._conn = None
