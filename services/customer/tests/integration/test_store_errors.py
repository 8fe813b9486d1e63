"""The customer event store turns its tables' unique violations into domain errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from customer.adapters.event_store import customer_event_store
from customer.bootstrap import MIGRATIONS, SCHEMA
from customer.domain.errors import BlockTaken, EmailTaken, NameTaken
from shared.envelope import EventEnvelope
from shared.eventstore import EventStore, Fragment
from shared.migrations import migrate

# a board row with just what the table requires; `{}` is the name
_CUSTOMER_ROW = (
    "INSERT INTO customers (id, name, status, currency, channels, cps, debit_limit, tax,"
    " minimum_payment, portal_access, version, created_at, updated_at, search, card)"
    " VALUES ({}::uuid, {}, 'active', 'EUR', 1, 1, 0, 0, 0, false, 1, now(), now(), '', '{{}}')"
)
_CONTACT_ROW = "INSERT INTO contacts (id, customer_id, email) VALUES ({}::uuid, {}::uuid, {})"
_BLOCK_ROW = (
    "INSERT INTO number_blocks (block_index, id, customer_id, first_number, last_number)"
    " VALUES (0, {}::uuid, {}::uuid, 100, 199)"
)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(make_database: object) -> AsyncIterator[asyncpg.Pool]:
    url: str = await make_database()  # type: ignore[operator]
    await migrate(url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(url, server_settings={"search_path": SCHEMA})
    yield pool
    await pool.close()


def created(stream_id: str) -> list[EventEnvelope]:
    return [EventEnvelope(type="CustomerCreated", category="customer", stream_id=stream_id,
                          version=1, data={})]


async def test_a_taken_name_is_the_domain_error_and_writes_nothing(pool: asyncpg.Pool) -> None:
    store = customer_event_store(pool)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await store.append(created(first), fragments=[Fragment(_CUSTOMER_ROW, [first, "Acme Telecom"])])
    with pytest.raises(NameTaken) as raised:
        await store.append(created(second), fragments=[Fragment(_CUSTOMER_ROW, [second, "ACME telecom"])])
    assert raised.value.code == "name_taken" and "names are unique" in raised.value.message
    assert await store.load([second]) == {second: []}  # the statement wrote nothing
    # without the customer adapter's mapping the driver's error comes through, unnamed
    with pytest.raises(asyncpg.UniqueViolationError):
        await EventStore(pool).append(
            created(second), fragments=[Fragment(_CUSTOMER_ROW, [second, "acme TELECOM"])])


async def test_a_taken_email_and_a_taken_block_are_domain_errors(pool: asyncpg.Pool) -> None:
    store = customer_event_store(pool)
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    await store.append(created(one), fragments=[
        Fragment(_CONTACT_ROW, [str(uuid.uuid4()), one, "noc@example.com"]),
        Fragment(_BLOCK_ROW, [str(uuid.uuid4()), one]),
    ])
    with pytest.raises(EmailTaken) as email:
        await store.append(created(two), fragments=[
            Fragment(_CONTACT_ROW, [str(uuid.uuid4()), two, "NOC@example.com"])])
    assert email.value.code == "email_taken"
    with pytest.raises(BlockTaken) as block:
        await store.append(created(two), fragments=[Fragment(_BLOCK_ROW, [str(uuid.uuid4()), two])])
    assert [d.type for d in block.value.details] == [BlockTaken.TYPE]
