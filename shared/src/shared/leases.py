"""Partition leases: at most one process reads a customer partition, whatever the configuration.

Replicas are told which partitions are theirs (PATCHBAY_REPLICA_INDEX / _COUNT). Two processes
configured alike (two customer pods left at the default 1-of-1, a replica started twice) would
read the same durables and rewind them under each other. So the reader of a partition holds a
PostgreSQL session advisory lock named after its durable: the first process takes it, the others
wait as hot standbys and take over when its session ends (the process died, or lost PostgreSQL).

Failover between replicas: the replica a partition belongs to also holds `wanted:<lease>` while
it runs. The other replicas watch that one; when nobody has held it for a while (the replica is
down), one of them takes the partition's lease and reads it, and gives it back as soon as
`wanted:` is held again.
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

    async def _session(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._held.clear()  # a lost session released every lease it had
            self._conn = await asyncpg.connect(self.dsn)
        return self._conn

    async def claim(self, name: str) -> bool:
        """Take the lease of `name` if nobody holds it (True also when this process already does)."""
        async with self._guard:
            conn = await self._session()
            if name in self._held:
                return True
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name):
                self._held.add(name)
                return True
            return False

    async def taken(self, name: str) -> bool:
        """Whether some session holds the lease of `name` (this one included); takes nothing."""
        async with self._guard:
            if self.holds(name):
                return True
            return bool(await (await self._session()).fetchval(
                "SELECT CASE WHEN pg_try_advisory_lock(k) THEN NOT pg_advisory_unlock(k) ELSE true END"
                " FROM hashtextextended($1, 0) AS k", name))

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
