"""The leader loop both relays run: one leader per lock key, woken by NOTIFY, taken over when it stops."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from devtools.testing.plugin import MakeDatabase
from devtools.testing.waiting import wait_for
from shared.leader import LeaderLoop
from shared.runtime import cancel_tasks

pytestmark = pytest.mark.servers


class Jobs:
    """A table of jobs; `work` deletes up to `batch` of them and counts the rounds."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.done: list[int] = []
        self.rounds = 0

    async def work(self, conn: asyncpg.Connection) -> int:
        self.rounds += 1
        ids = [r[0] for r in await conn.fetch("DELETE FROM jobs WHERE id IN"
                                                " (SELECT id FROM jobs ORDER BY id LIMIT $1) RETURNING id",
                                                self.batch)]
        self.done.extend(sorted(ids))
        return len(ids)


async def prepared(make_database: MakeDatabase) -> str:
    dsn = await make_database()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute('CREATE SCHEMA lead; CREATE TABLE lead.jobs (id int PRIMARY KEY)')
    finally:
        await conn.close()
    return dsn


def loop(dsn: str, jobs: Jobs, name: str = "test_leader") -> LeaderLoop:
    return LeaderLoop(name=name, dsn=dsn, schema="lead", lock_key="lead:jobs", channel="jobs",
                      work=jobs.work, batch_size=jobs.batch, poll_interval_s=30)


async def test_one_leader_works_and_a_notify_wakes_it_before_the_poll(make_database: MakeDatabase) -> None:
    dsn = await prepared(make_database)
    first, second = Jobs(batch=2), Jobs(batch=2)
    a, b = loop(dsn, first), loop(dsn, second)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    conn = await asyncpg.connect(dsn)
    try:
        await wait_for(lambda: a.is_leader or b.is_leader, timeout=10, message="nobody took the lead")
        leader, follower = (first, second) if a.is_leader else (second, first)
        assert not (a.is_leader and b.is_leader)
        await conn.execute("INSERT INTO lead.jobs SELECT generate_series(1, 5); NOTIFY jobs")
        # the poll is 30 s: only the NOTIFY can have woken it; full batches go round at once
        await wait_for(lambda: leader.done == [1, 2, 3, 4, 5], timeout=10, message="the jobs were not done")
        assert follower.done == [] and follower.rounds == 0
    finally:
        await conn.close()
        await cancel_tasks(tasks, within_s=5)


async def test_when_the_leader_stops_another_takes_over(make_database: MakeDatabase) -> None:
    dsn = await prepared(make_database)
    first, second = Jobs(batch=10), Jobs(batch=10)
    a = loop(dsn, first)
    task_a = asyncio.create_task(a.run())
    await wait_for(lambda: a.is_leader, timeout=10, message="the first loop did not lead")
    b = loop(dsn, second)
    task_b = asyncio.create_task(b.run())
    b.poll_interval_s = 0.1  # how soon it tries the lock again
    try:
        await asyncio.sleep(0.3)
        assert not b.is_leader
        await cancel_tasks([task_a], within_s=5)
        assert not a.is_leader
        await wait_for(lambda: b.is_leader, timeout=10, message="the lead was not taken over")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO lead.jobs VALUES (7); NOTIFY jobs")
        finally:
            await conn.close()
        await wait_for(lambda: second.done == [7], timeout=10, message="the new leader did not work")
    finally:
        await cancel_tasks([task_a, task_b], within_s=5)


async def test_a_failing_round_drops_the_lead_and_the_loop_retries(make_database: MakeDatabase) -> None:
    dsn = await prepared(make_database)
    calls = [0]

    async def flaky(conn: asyncpg.Connection) -> int:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("broken round")
        return 0

    leader = LeaderLoop(name="test_leader", dsn=dsn, schema="lead", lock_key="lead:flaky", channel="jobs",
                        work=flaky, batch_size=10, poll_interval_s=0.05)
    task = asyncio.create_task(leader.run())
    try:
        await wait_for(lambda: calls[0] >= 2 and leader.is_leader, timeout=10,
                       message="the loop did not come back after a failed round")
    finally:
        await cancel_tasks([task], within_s=5)
