"""The two writes that race when settings change as an attempt ends, on a real PostgreSQL: the
outcome of an attempt with the old settings, and the settings write. Whichever goes first, the
delivery is due at once afterwards (not after its back-off)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from devtools.testing.waiting import wait_for
from notifier.adapters.delivery_store import DeliveryStore, NewDelivery, NewMessage
from notifier.application.channel_settings import ChannelSettings
from notifier.bootstrap import PLUMBING
from notifier.domain.delivery import Delivery, Recorded
from shared.contracts.notifier import EmailSettingsIn
from shared.envelope import Metadata
from shared.eventstore import EventStore
from shared.migrations import migrate
from shared.secrets import Sealer
from shared.service_runtime import open_pool

pytestmark = pytest.mark.servers

BACK_OFF_S = 600.0


@pytest_asyncio.fixture(loop_scope="session")
async def pool(make_database: Any) -> AsyncIterator[asyncpg.Pool]:
    """A notifier schema of its own: no worker, no recovery, only the two writes of the test."""
    url = await make_database()
    await migrate(url, PLUMBING.schema, PLUMBING.migrations)
    pool = await open_pool(PLUMBING, url, 4)
    yield pool
    await pool.close()


def email(port: int) -> EmailSettingsIn:
    return EmailSettingsIn(from_address="noc@carrier.example", smtp_host="127.0.0.1", smtp_port=port,
                           security="none")


async def claimed(pool: asyncpg.Pool, store: DeliveryStore) -> Delivery:
    """One e-mail delivery, queued and claimed (as a worker's claim, committed)."""
    message_id = uuid.uuid4()
    await store.queue(NewMessage(
        message_id=message_id, kind="broadcast", channel="email", metadata=Metadata(), subject="s", body="b",
        deliveries=[NewDelivery(uuid.uuid4(), f"{message_id}:a@race.example", "a@race.example", subject="s",
                                body="b")]))
    [d] = await store.claim("email", uuid.uuid4(), 10)
    return d


async def waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    """Whether some session of this database waits for a lock."""
    return bool(await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                    " AND wait_event_type = 'Lock'"))


async def held_while(pool: asyncpg.Pool, statements: list[tuple[str, tuple[Any, ...]]],
                     other: Any, waits: str) -> Any:
    """Run `statements` in a transaction, start `other` (a coroutine), wait until it waits on a lock
    (bounded), then commit; return `other`'s result."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        for sql, args in statements:
            await conn.execute(sql, *args)
        task = asyncio.create_task(other)
        await wait_for(lambda: waiting_on_a_lock(pool), timeout=10, message=f"{waits} to wait")
        await tx.commit()
    return await asyncio.wait_for(task, 10)


async def due_in(pool: asyncpg.Pool, d: Delivery) -> float:
    """Seconds until the delivery is due (<= 0: due now); it must be queued."""
    row = await pool.fetchrow("SELECT state, extract(epoch FROM next_attempt_at - now()) AS s FROM deliveries"
                              " WHERE delivery_id = $1", d.delivery_id)
    assert row["state"] == "queued", row
    return float(row["s"])


async def test_a_settings_write_waits_for_an_outcome_recorded_meanwhile_then_makes_it_due(
    pool: asyncpg.Pool,
) -> None:
    store = DeliveryStore(pool, EventStore(pool))
    settings = ChannelSettings(pool, EventStore(pool), Sealer(Sealer.new_key()))
    await settings.set_email(email(2525))
    d = await claimed(pool, store)
    # the outcome's write as the store makes it, held open: the settings row read FOR SHARE, the
    # delivery queued with its back-off (tried with the settings in force at that moment)
    await held_while(pool, [
        ("SELECT version FROM channel_settings WHERE channel = 'email' FOR SHARE", ()),
        ("UPDATE deliveries SET state = 'queued', claimed_by = NULL, next_attempt_at ="
         f" now() + interval '{BACK_OFF_S} s' WHERE delivery_id = $1", (d.delivery_id,)),
    ], settings.set_email(email(2526)), "the settings write")  # the admin's change, meanwhile
    assert await due_in(pool, d) <= 0


async def test_an_outcome_recorded_while_settings_are_written_reads_the_new_version(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, EventStore(pool))
    settings = ChannelSettings(pool, EventStore(pool), Sealer(Sealer.new_key()))
    await settings.set_email(email(2525))
    version = await settings.version("email")
    assert version is not None
    d = await claimed(pool, store)
    # a settings write in progress (its row locked and a new version written, not yet committed)
    outcome = Recorded(d, "queued", error="SMTP connection: timed out", retry_in_s=BACK_OFF_S)
    await held_while(pool, [
        ("SELECT 1 FROM channel_settings WHERE channel = 'email' FOR UPDATE", ()),
        ("UPDATE channel_settings SET version = version + 1 WHERE channel = 'email'", ()),
    ], store.record([outcome], tried_with=version), "the outcome's write")
    assert await due_in(pool, d) <= 0


async def test_an_outcome_with_the_current_settings_keeps_its_back_off(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, EventStore(pool))
    settings = ChannelSettings(pool, EventStore(pool), Sealer(Sealer.new_key()))
    await settings.set_email(email(2525))
    version = await settings.version("email")
    [d, e] = [await claimed(pool, store) for _ in range(2)]
    await store.record([Recorded(d, "queued", error="SMTP 451", retry_in_s=BACK_OFF_S)], tried_with=version)
    await store.release([e.delivery_id], BACK_OFF_S, version, "email")
    assert await due_in(pool, d) > BACK_OFF_S - 60
    assert await due_in(pool, e) > BACK_OFF_S - 60
    # and with older settings, both are due at once
    [d, e] = [await claimed(pool, store) for _ in range(2)]
    assert version is not None
    await store.record([Recorded(d, "queued", error="SMTP 451", retry_in_s=BACK_OFF_S)], tried_with=version - 1)
    await store.release([e.delivery_id], BACK_OFF_S, version - 1, "email")
    assert await due_in(pool, d) <= 0 and await due_in(pool, e) <= 0
