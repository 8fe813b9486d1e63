"""Partition leases: at most one process reads a customer partition, whatever the configuration.

Replicas are told which partitions are theirs (PATCHBAY_REPLICA_INDEX / _COUNT). Two processes
configured alike (two customer pods left at the default 1-of-1, a replica started twice) would
read the same durables and rewind them under each other. So the reader of a partition holds a
PostgreSQL session advisory lock named after its durable: the first process takes it, the others
wait as hot standbys and take over when its session ends (the process died, or lost PostgreSQL).

Failover between replicas: the replica a partition belongs to also holds `wanted:<lease>` while
it runs. The other replicas watch that one; when nobody has held it for a while (the replica is
down), one of them takes the partition's lease and reads it, and gives it back as soon as
`wanted:` is held again. `PartitionClaim` is that protocol for one reader (shared.consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import structlog

log = structlog.get_logger(__name__)

STANDBY_RETRY_S = 2.0  # a standby tries to take a partition's lease this often


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


class LeaseLost(RuntimeError):
    """This process no longer holds its partition's lease: stop reading, wait to take it again."""


class HandedBack(LeaseLost):
    """The replica this partition belongs to is back: its stand-in gave the lease back."""


class PartitionClaim:
    """One reader's claim on a partition's durable: its own replica's, or a stand-in's for a replica gone.

    `stand_in_after_s` None: the partition is this replica's own (it says it is wanted, then waits
    for the lease); else it is read only once its replica has been gone that long, and handed
    back when the replica returns. Without leases every claim is granted at once.
    """

    def __init__(
        self, leases: PartitionLeases | None, lease: str, durable: str, stand_in_after_s: float | None = None,
    ) -> None:
        self.leases = leases
        self.lease = lease
        self.wanted = f"wanted:{lease}"  # held by the replica the partition belongs to while it runs
        self.durable = durable  # what the logs name
        self.stand_in_after_s = stand_in_after_s
        self._wanted_check_at = 0.0

    async def take(self) -> None:
        """Wait until this process holds the partition's lease (at once without leases)."""
        if self.leases is None:
            return
        if self.stand_in_after_s is None:
            await self._claim_own(self.leases)
        else:
            await self._stand_in(self.leases, self.stand_in_after_s)

    async def _claim_own(self, leases: PartitionLeases) -> None:
        """Take this replica's own partition: say it is wanted, wait for its lease."""
        standby = False
        while True:
            # claimed again each round: a stand-in looking at it holds it for an instant
            await leases.claim(self.wanted)
            if await leases.claim(self.lease):
                break
            if not standby:
                log.info("partition_standby", durable=self.durable,
                         hint="another process reads this partition; taking over when it stops")
                standby = True
            await asyncio.sleep(STANDBY_RETRY_S)
        if standby:
            log.info("partition_taken_over", durable=self.durable)

    async def _stand_in(self, leases: PartitionLeases, after_s: float) -> None:
        """Wait until the replica this partition belongs to has been gone `after_s`, then take it."""
        unwanted_since: float | None = None
        while True:
            if await leases.taken(self.wanted):
                unwanted_since = None
            else:
                now = time.monotonic()
                unwanted_since = unwanted_since or now
                if now - unwanted_since >= after_s and await leases.claim(self.lease):
                    log.warning("partition_stood_in", durable=self.durable,
                                hint="its replica is down; reading it until the replica returns")
                    self._wanted_check_at = now + STANDBY_RETRY_S
                    return
            await asyncio.sleep(min(STANDBY_RETRY_S, max(after_s / 2, 0.1)))

    async def hand_back_if_wanted(self) -> None:
        """A stand-in, between batches: give the lease back once the partition's replica is back."""
        if self.leases is None or self.stand_in_after_s is None:
            return
        now = time.monotonic()
        if now < self._wanted_check_at:
            return
        self._wanted_check_at = now + STANDBY_RETRY_S
        if await self.leases.taken(self.wanted):
            await self.leases.release(self.lease)
            raise HandedBack(f"gave {self.lease} back to its replica")

    def check(self) -> None:
        """Raise LeaseLost when this process lost its partition's lease (its PostgreSQL session)."""
        if self.leases is not None and not self.leases.holds(self.lease):
            raise LeaseLost(f"lost the lease of {self.lease}")
