"""The board's counts: customers per status under the other filters, remembered per filter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, get_args

from shared.contracts.customer import ListCustomers, Status

STATUSES: tuple[str, ...] = get_args(Status)
StatusCounts = dict[str, int]


def total_of(counts: StatusCounts, statuses: list[str] | None) -> int:
    """The customers of the statuses asked for (all when none)."""
    return sum(counts.get(s, 0) for s in statuses) if statuses else sum(counts.values())


class BoardTotals:
    """Recent counts of the board by filter: counting 100k customers costs 5-30 ms (30 until
    autovacuum has marked the pages all-visible again, 100+ ms right after a burst of writes),
    a page well under 1 ms.

    The counts are per status under every filter but status (one grouped count gives `total`
    for any status filter and the board header's customers per status). An entry lives
    `ttl_s`, and every commit of this process clears them all; so a count is exact but for what
    other processes (another customer replica, a bulk upload's own transaction) committed in
    the last `ttl_s`. One count per filter runs at a time: queries arriving meanwhile wait for
    it instead of counting the same rows again (32 clients did, each time an entry expired).
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 1_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._counts: dict[tuple[Any, ...], tuple[StatusCounts, float]] = {}
        self._counting: dict[tuple[Any, ...], asyncio.Future[StatusCounts]] = {}
        self._generation = 0

    @staticmethod
    def key(query: ListCustomers) -> tuple[Any, ...]:
        """What the counts depend on: the filters but status (not the sort, the page or its size)."""
        def sorted_or_none(values: list[Any] | None) -> tuple[Any, ...] | None:
            return tuple(sorted(values)) if values else None

        return (query.q or None, sorted_or_none(query.tag), sorted_or_none(query.currency),
                sorted_or_none(query.country), query.created_from, query.created_to)

    def get(self, key: tuple[Any, ...]) -> StatusCounts | None:
        """Counts made less than `ttl_s` ago and since this process's last commit."""
        found = self._counts.get(key)
        if found is None or time.monotonic() - found[1] > self.ttl_s:
            return None
        return found[0]

    def put(self, key: tuple[Any, ...], counts: StatusCounts) -> None:
        """Remember counts just made."""
        if len(self._counts) >= self.max_entries:
            self._counts.clear()
        self._counts[key] = (counts, time.monotonic())

    def clear(self) -> None:
        """Forget every count (this process committed a change); counts under way are not kept."""
        self._generation += 1
        self._counts.clear()
        self._counting.clear()

    async def counts(
        self, key: tuple[Any, ...], count: Callable[[], Awaitable[StatusCounts]],
    ) -> StatusCounts:
        """The remembered counts of `key`, or those of the count under way, or a new count."""
        if (found := self.get(key)) is not None:
            return found
        if (under_way := self._counting.get(key)) is not None:
            try:
                return await asyncio.shield(under_way)
            except asyncio.CancelledError:
                if not under_way.cancelled():
                    raise  # this query was cancelled
                # the query counting was cancelled: count here
        generation = self._generation
        future: asyncio.Future[StatusCounts] = asyncio.get_running_loop().create_future()
        self._counting[key] = future
        try:
            counted = await count()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else has to
            raise
        finally:
            if self._counting.get(key) is future:
                del self._counting[key]
        future.set_result(counted)
        if generation == self._generation:  # nothing committed here while counting
            self.put(key, counted)
        return counted
