"""The board's remembered counts: one count per filter at a time, none kept across a commit."""

from __future__ import annotations

import asyncio

import pytest
from customer.projections.board_totals import BoardTotals, total_of


async def test_queries_arriving_during_a_count_share_it() -> None:
    totals = BoardTotals(ttl_s=60)
    release = asyncio.Event()
    counted = 0

    async def count() -> dict[str, int]:
        nonlocal counted
        counted += 1
        await release.wait()
        return {"active": 3, "inactive": 1}

    waiting = [asyncio.create_task(totals.counts(("k",), count)) for _ in range(32)]
    await asyncio.sleep(0)
    release.set()
    assert [await t for t in waiting] == [{"active": 3, "inactive": 1}] * 32
    assert counted == 1
    assert await totals.counts(("k",), count) == {"active": 3, "inactive": 1} and counted == 1


async def test_a_count_under_way_when_this_process_commits_is_answered_but_not_kept() -> None:
    totals = BoardTotals(ttl_s=60)
    release = asyncio.Event()
    started = 0

    async def count() -> dict[str, int]:
        nonlocal started
        started += 1
        mine = started
        await release.wait()
        return {"active": mine}

    before = asyncio.create_task(totals.counts(("k",), count))
    await asyncio.sleep(0)
    totals.clear()  # a commit: queries from now on must not join the count started before it
    after = asyncio.create_task(totals.counts(("k",), count))
    await asyncio.sleep(0)
    release.set()
    assert await before == {"active": 1} and await after == {"active": 2}
    assert totals.get(("k",)) == {"active": 2}


async def test_a_failed_count_fails_its_waiters_and_is_not_kept() -> None:
    totals = BoardTotals(ttl_s=60)
    release = asyncio.Event()

    async def broken() -> dict[str, int]:
        await release.wait()
        raise ConnectionError("database went away")

    first = asyncio.create_task(totals.counts(("k",), broken))
    await asyncio.sleep(0)
    second = asyncio.create_task(totals.counts(("k",), broken))
    await asyncio.sleep(0)
    release.set()
    for task in (first, second):
        with pytest.raises(ConnectionError):
            await task
    assert totals.get(("k",)) is None


def test_total_is_the_sum_over_the_statuses_asked_for() -> None:
    counts = {"active": 5, "inactive": 2, "penalty": 1}
    assert total_of(counts, None) == 8
    assert total_of(counts, ["inactive", "penalty", "pending_approval"]) == 3


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_ageing_count_is_answered_while_one_replaces_it_in_the_background() -> None:
    clock = Clock()
    totals = BoardTotals(ttl_s=5, refresh_at=0.6, clock=clock)
    release = asyncio.Event()
    calls = 0

    async def count() -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return {"active": calls}

    assert await totals.counts(("k",), count) == {"active": 1}
    clock.now += 2  # young: answered, no recount
    assert await totals.counts(("k",), count) == {"active": 1} and calls == 1
    clock.now += 2  # past 60% of its life: answered at once, one recount starts
    answers = [await totals.counts(("k",), count) for _ in range(5)]
    assert answers == [{"active": 1}] * 5
    await asyncio.sleep(0)
    assert calls == 2  # one background count for the five queries
    release.set()
    await asyncio.wait_for(asyncio.gather(*totals._refreshing.values()), 5)
    assert await totals.counts(("k",), count) == {"active": 2} and calls == 2


async def test_an_expired_count_is_never_answered() -> None:
    clock = Clock()
    totals = BoardTotals(ttl_s=5, clock=clock)
    calls = 0

    async def count() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"active": calls}

    assert await totals.counts(("k",), count) == {"active": 1}
    clock.now += 5.5
    assert await totals.counts(("k",), count) == {"active": 2}


async def test_a_failed_background_count_keeps_the_valid_entry_and_counts_again_later() -> None:
    clock = Clock()
    totals = BoardTotals(ttl_s=5, clock=clock)
    fail = False

    async def count() -> dict[str, int]:
        if fail:
            raise ConnectionError("database went away")
        return {"active": 1}

    await totals.counts(("k",), count)
    fail = True
    clock.now += 4
    assert await totals.counts(("k",), count) == {"active": 1}
    await asyncio.wait_for(asyncio.gather(*totals._refreshing.values(), return_exceptions=True), 5)
    assert not totals._refreshing and totals.get(("k",)) == {"active": 1}
    clock.now += 2  # expired, the database is back: counted in the query
    fail = False
    assert await totals.counts(("k",), count) == {"active": 1}
