"""The outbox relay: every committed event reaches JetStream once, in order, even across crashes."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest_asyncio
from customer.bootstrap import MIGRATIONS, SCHEMA
from devtools.testing.jetstream import stored_messages, stream_messages
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.envelope import EventEnvelope
from shared.eventstore import ConcurrencyError, EventStore
from shared.migrations import migrate
from shared.outbox_relay import OutboxRelay
from shared.runtime import cancel_tasks
from shared.streams import CUSTOMER_EVENTS, ensure_streams


@pytest_asyncio.fixture(loop_scope="session")
async def db(make_database: object) -> str:
    url: str = await make_database()  # type: ignore[operator]
    await migrate(url, SCHEMA, MIGRATIONS)
    return url


async def published(nats: NatsClient, stream_id: str) -> list[tuple[int, str]]:
    """(version, event id) of every message of one customer in CUSTOMER_EVENTS."""
    out = []
    for msg in await stored_messages(nats.jetstream(), f"events.customer.{stream_id}.>", CUSTOMER_EVENTS.name):
        event = EventEnvelope.model_validate_json(msg.data)
        assert msg.headers and msg.headers["Nats-Msg-Id"] == str(event.event_id)
        out.append((event.version, str(event.event_id)))
    return out


def events_for(stream_id: str, first: int, count: int) -> list[EventEnvelope]:
    return [
        EventEnvelope(type="CustomerUpdated", category="customer", stream_id=stream_id,
                      version=v, data={"changes": {}})
        for v in range(first, first + count)
    ]


async def test_append_at_a_taken_version_fails(db: str) -> None:
    pool = await asyncpg.create_pool(db, server_settings={"search_path": SCHEMA})
    try:
        store = EventStore(pool)
        sid = str(uuid.uuid4())
        results = await asyncio.gather(
            *[store.append(events_for(sid, 1, 1)) for _ in range(4)], return_exceptions=True
        )
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, ConcurrencyError) for r in results if isinstance(r, Exception))
    finally:
        await pool.close()


async def test_relay_publishes_after_a_crash_exactly_once(db: str, nats: NatsClient) -> None:
    js = nats.jetstream()
    await ensure_streams(js, [CUSTOMER_EVENTS])
    pool = await asyncpg.create_pool(db, server_settings={"search_path": SCHEMA})
    store = EventStore(pool)
    sid = str(uuid.uuid4())
    try:
        # committed while no relay runs (it crashed before publishing)
        await store.append(events_for(sid, 1, 3))
        assert await published(nats, sid) == []
        relay = OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1)
        task = asyncio.create_task(relay.run())
        await wait_for(lambda: relay.published_total >= 3, timeout=10)
        # the relay dies after publishing but before deleting its outbox rows
        await cancel_tasks([task])
        await pool.execute("INSERT INTO outbox SELECT position FROM events WHERE stream_id=$1", sid)
        await store.append(events_for(sid, 4, 2))
        again = OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1)
        task = asyncio.create_task(again.run())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
        await cancel_tasks([task])
        got = await published(nats, sid)
        assert [v for v, _ in got] == [1, 2, 3, 4, 5]
        assert len({e for _, e in got}) == 5
    finally:
        await pool.close()


async def test_late_commit_with_a_lower_position_is_not_skipped(db: str, nats: NatsClient) -> None:
    js = nats.jetstream()
    pool = await asyncpg.create_pool(db, server_settings={"search_path": SCHEMA})
    relay = OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    slow_sid, fast_sid = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        async with pool.acquire() as slow:
            tx = slow.transaction()
            await tx.start()
            await EventStore(slow).append(events_for(slow_sid, 1, 1))  # takes the lower position
            await EventStore(pool).append(events_for(fast_sid, 1, 1))  # commits first
            await wait_for(lambda: published(nats, fast_sid), timeout=10)
            await tx.commit()
        await wait_for(lambda: published(nats, slow_sid), timeout=10, message="late commit skipped")
    finally:
        await cancel_tasks([task])
        await pool.close()


async def test_only_one_relay_leads(db: str, nats: NatsClient) -> None:
    js = nats.jetstream()
    relays = [OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1) for _ in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await wait_for(lambda: any(r.is_leader for r in relays), timeout=10)
        assert sum(r.is_leader for r in relays) == 1
        leader = next(i for i, r in enumerate(relays) if r.is_leader)
        await cancel_tasks([tasks[leader]])
        await wait_for(lambda: relays[1 - leader].is_leader, timeout=10, message="no takeover")
    finally:
        await cancel_tasks(tasks)


async def test_hinted_events_are_published_as_their_model_dump_json(db: str, nats: NatsClient) -> None:
    # the relay publishes the bytes the append serialized (the position filled in), not a second dump
    js = nats.jetstream()
    await ensure_streams(js, [CUSTOMER_EVENTS])
    pool = await asyncpg.create_pool(db, server_settings={"search_path": SCHEMA})
    relay = OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    sid = str(uuid.uuid4())
    appended: list[EventEnvelope] = []
    store = EventStore(pool, on_appended=lambda e: (appended.extend(e), relay.hint(e)),
                       on_appended_json=relay.hint_json)
    try:
        await wait_for(lambda: relay.is_leader, timeout=10)
        events = [e.model_copy(update={"data": {"changes": {"name": {"old": "Zoë", "new": "\"q\" ✓"}}}})
                  for e in events_for(sid, 1, 3)]
        await store.append(events)
        await wait_for(lambda: relay.published_total >= 3, timeout=10)
        got = await stream_messages(js, f"events.customer.{sid}.>", CUSTOMER_EVENTS.name)
        assert got == [e.model_dump_json().encode() for e in appended]
        assert [EventEnvelope.model_validate_json(g).position for g in got] == [e.position for e in appended]
        assert not relay._payloads  # each published once, then dropped
    finally:
        await cancel_tasks([task])
        await pool.close()


async def test_a_followed_store_is_published_from_its_hints_and_a_backlog_in_batches(db: str, nats: NatsClient) -> None:
    # the relay follows the store's appends in flight: their events are never read back; a backlog
    # larger than a batch goes out in order
    js = nats.jetstream()
    await ensure_streams(js, [CUSTOMER_EVENTS])
    pool = await asyncpg.create_pool(db, server_settings={"search_path": SCHEMA})
    relay = OutboxRelay(dsn=db, schema=SCHEMA, js=js, poll_interval_s=0.1, batch_size=10)
    store = EventStore(pool, on_appended=relay.hint, on_appended_json=relay.hint_json)
    relay.follow(store.appending)
    elsewhere = EventStore(pool)  # another replica: no hints here
    task = asyncio.create_task(relay.run())
    sids = [str(uuid.uuid4()) for _ in range(12)]
    try:
        await wait_for(lambda: relay.is_leader, timeout=10)
        await asyncio.gather(*[store.append(events_for(sid, v, 1)) for v in (1, 2, 3) for sid in sids[:1]],
                             *[store.append(events_for(sid, 1, 3)) for sid in sids[1:10]])
        await elsewhere.append(events_for(sids[10], 1, 4))
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
        assert relay.published_total == 3 + 27 + 4
        assert relay.read_back_total == 4  # only the other replica's events
        for sid in sids[1:11]:
            versions = [v for v, _ in await published(nats, sid)]
            assert versions == sorted(versions) and len(versions) in (3, 4)
    finally:
        await cancel_tasks([task])
        await pool.close()
