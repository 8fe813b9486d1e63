"""Claims left by a dead instance: resolved from its handover journal, never sent twice.

Each instance holds a PostgreSQL advisory lock (keyed by its id) on a connection of its own
while it lives; the lock goes when the process dies. Claims of an instance whose lock can be
taken belong to the dead: a claim noted HANDED in its journal was handed over (recorded as
sent, unconfirmed); one noted only INTENT was cut between the two notes around its final write,
so its outcome is unknown (failed with that reason, never sent again); one not in it never
reached the provider (queued again, its attempt given back). With no journal to read (another
host, lost disk), a claim's outcome is unknown and it is failed with that reason rather than
risk a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import asyncpg
import structlog

from notifier.adapters.delivery_store import DeliveryStore
from notifier.adapters.handover_journal import HANDED, INTENT, HandoverJournal
from notifier.adapters.metrics import RECOVERED
from notifier.domain.delivery import Recorded

log = structlog.get_logger(__name__)

UNKNOWN = (
    "outcome unknown: the sending instance died and left no handover journal here;"
    " not retried, so that it cannot arrive twice"
)
CUT = (
    "outcome unknown: the sending instance died while writing the message's last bytes;"
    " not retried, so that it cannot arrive twice"
)
HANDED_OVER = "handed to the provider just before the sending instance died; its reply was not seen"
INTERRUPTED = "interrupted before it was sent (the sending instance died); queued again"


def lock_key(instance: UUID) -> int:
    """A signed 64-bit advisory lock key for an instance."""
    return int.from_bytes(instance.bytes[:8], "big", signed=True)


class InstanceLease:
    """This instance's liveness lock, and the test of another's."""

    def __init__(self, dsn: str, instance: UUID) -> None:
        self.dsn = dsn
        self.instance = instance
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Take this instance's lock on a dedicated connection."""
        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.execute("SELECT pg_advisory_lock($1)", lock_key(self.instance))

    async def release(self) -> None:
        """Close the connection (the lock goes with it)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def try_take(self, other: UUID) -> bool:
        """True when `other` is dead: its lock is free, and now held here until `give_back`."""
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                await self.release()
                await self.acquire()
            assert self._conn is not None
            return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(other)))

    async def give_back(self, other: UUID) -> None:
        """Release another instance's lock taken by `try_take`."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.execute("SELECT pg_advisory_unlock($1)", lock_key(other))


class Recovery:
    """Finds dead instances' claims and settles them."""

    def __init__(
        self,
        *,
        store: DeliveryStore,
        lease: InstanceLease,
        journal_dir: Path,
        active: Callable[[], set[UUID]] | None = None,
        orphan_after_s: float = 60.0,
    ) -> None:
        self.store = store
        self.lease = lease
        self.journal_dir = journal_dir
        self.active = active
        self.orphan_after_s = orphan_after_s
        self.recovered = 0

    async def run(self, interval_s: float) -> None:
        """Settle dead claims now and then, until cancelled."""
        while True:
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("recovery_failed", error=str(exc))
            await asyncio.sleep(interval_s)

    async def once(self) -> int:
        """Settle the claims of every dead instance; return how many."""
        settled = 0
        for other in await self.store.claimed_by_others(self.lease.instance):
            if not await self.lease.try_take(other):
                continue
            try:
                settled += await self.settle(other)
            finally:
                await self.lease.give_back(other)
        if self.active is not None:
            # a claim this process made but never heard back about was never sent: queue it again
            orphans = await self.store.orphans(self.lease.instance, self.active(), self.orphan_after_s)
            if orphans:
                await self.store.release(orphans, 0.0)
                log.warning("orphaned_claims_released", count=len(orphans))
                settled += len(orphans)
        self.recovered += settled
        return settled

    async def settle(self, other: UUID) -> int:
        """Record the outcome of every open claim of a dead (or stopped) instance; return how many."""
        handed = HandoverJournal.read(self.journal_dir, other)
        claims = await self.store.claims_of(other)
        if not claims:
            HandoverJournal.remove(self.journal_dir, other)
            return 0
        outcomes: list[Recorded] = []
        for d in claims:
            if handed is None:
                outcomes.append(Recorded(d, "failed", error=UNKNOWN))
            elif handed.get(d.delivery_id) == HANDED:
                outcomes.append(Recorded(d, "sent", error=HANDED_OVER, unconfirmed=True))
            elif handed.get(d.delivery_id) == INTENT:
                outcomes.append(Recorded(d, "failed", error=CUT))
            else:
                outcomes.append(Recorded(d, "queued", error=INTERRUPTED, attempts=d.attempts - 1))
        await self.store.record(outcomes)
        HandoverJournal.remove(self.journal_dir, other)
        for outcome in outcomes:
            RECOVERED.labels(
                {"sent": "handed_over", "queued": "requeued", "failed": "unknown"}[outcome.state]
            ).inc()
        log.warning(
            "dead_instance_claims_settled",
            instance=str(other),
            claims=len(claims),
            handed_over=sum(o.state == "sent" for o in outcomes),
            requeued=sum(o.state == "queued" for o in outcomes),
            unknown=sum(o.state == "failed" for o in outcomes),
        )
        return len(claims)
