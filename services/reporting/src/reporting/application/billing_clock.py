"""The billing clock: one leader among replicas marks overdue invoices and issues scheduled ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from shared.leader import LeaderLoop

from reporting.application.invoice_changes import InvoiceChanges

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[int]]


class BillingClock:
    """Every `interval_s` (and when woken), on the leader only: overdue, then the schedules."""

    def __init__(self, changes: InvoiceChanges, *, dsn: str, schema: str, interval_s: float) -> None:
        self.changes = changes
        self.jobs: list[Job] = [changes.mark_overdue]
        self._leader = LeaderLoop(
            name="billing_clock", dsn=dsn, schema=schema, lock_key=f"{schema}:billing-clock",
            channel="billing_clock", work=self._tick, batch_size=1, poll_interval_s=interval_s,
        )

    @property
    def schedules(self) -> Job | None:
        """The scheduled-invoice job, if any (tests run it at a chosen day)."""
        return self.jobs[1] if len(self.jobs) > 1 else None

    @property
    def is_leader(self) -> bool:
        """Does this process hold the clock?"""
        return self._leader.is_leader

    def wake(self) -> None:
        """Run the jobs now (tests, operators)."""
        self._leader.wake()

    async def _tick(self, _: asyncpg.Connection) -> int:
        for job in self.jobs:
            try:
                await job()
            except Exception as exc:  # one job's failure must not stop the others
                log.warning("billing_clock_job_failed", job=getattr(job, "__name__", "job"), error=str(exc))
        return 0  # a short batch: wait for the next interval

    async def run(self) -> None:
        """Run until cancelled."""
        await self._leader.run()
