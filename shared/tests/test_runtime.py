"""A service's stop is bounded: tasks that swallow a cancellation, a pool with a borrowed connection."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from devtools.testing.plugin import MakeDatabase
from devtools.testing.waiting import wait_for
from shared.runtime import cancel_tasks, close_pool


async def waits_on(event: asyncio.Event, rounds: list[int]) -> None:
    """A relay-shaped loop: wait to be woken (or time out), then go round again."""
    while True:
        rounds.append(1)
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), 10)
        except TimeoutError:
            pass


async def test_a_task_woken_as_it_is_cancelled_is_still_stopped() -> None:
    # on Python 3.11 the first cancel lands in wait_for just as its event fires, and is dropped
    woken = asyncio.Event()
    rounds: list[int] = []
    task = asyncio.create_task(waits_on(woken, rounds))
    await asyncio.sleep(0)
    started = time.monotonic()
    woken.set()
    await cancel_tasks([task], within_s=5)
    assert task.cancelled()
    assert time.monotonic() - started < 2


async def test_a_task_that_never_stops_does_not_hold_the_stop() -> None:
    listening = [False]

    async def deaf() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if listening[0]:
                    raise

    task = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    started = time.monotonic()
    await cancel_tasks([task], within_s=0.6)
    assert 0.5 < time.monotonic() - started < 3
    assert not task.done()
    listening[0] = True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.servers
async def test_a_pool_with_a_borrowed_connection_closes_within_the_bound(make_database: MakeDatabase) -> None:
    dsn = await make_database()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    await pool.acquire()  # never released, like a task stuck mid-query
    started = time.monotonic()
    await close_pool(pool, within_s=0.5)
    assert time.monotonic() - started < 3
    assert pool.is_closing()
    watcher = await asyncpg.connect(dsn)
    try:
        async def sessions_left() -> bool:
            return await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()") == 0
        await wait_for(sessions_left, timeout=5, message="the pool's sessions were not closed")
    finally:
        await watcher.close()
