"""Command ids against real servers: a retry answers the first reply, another request a conflict."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from customer.application.idempotency import RecentReplies
from customer.bootstrap import CustomerService
from nats.aio.client import Client as NatsClient

from .conftest import call, create

pytestmark = pytest.mark.servers

CREATE = "customer.cmd.create"
UPDATE = "customer.cmd.update"
REUSED = "this Idempotency-Key was already used for another request"


async def count_events(service: CustomerService, stream_id: str | None = None) -> int:
    if stream_id is None:
        return int(await service.pool.fetchval("SELECT count(*) FROM events"))
    return int(await service.pool.fetchval("SELECT count(*) FROM events WHERE stream_id=$1", stream_id))


async def customers_named(service: CustomerService, name: str) -> int:
    return int(await service.pool.fetchval("SELECT count(*) FROM customers WHERE name = $1", name))


def forget_answers(service: CustomerService, *customer_ids: str) -> None:
    """As if the retry reached another replica, or this one restarted: only the table remembers."""
    service.commands.recent = RecentReplies()
    service.commands.cache.forget(customer_ids)


def assert_key_reused(reply: dict[str, Any]) -> None:
    assert reply["error"]["code"] == "conflict", reply
    assert reply["error"]["message"] == REUSED
    assert reply["error"]["details"][0]["field"] == "Idempotency-Key"


async def test_a_retry_answers_the_first_reply_whatever_its_meta(
    nc: NatsClient, service: CustomerService
) -> None:
    key = str(uuid.uuid4())
    body = {"customer": {"name": f"idem-{key[:8]}", "tags": ["b", "a"]}}
    first = await call(nc, CREATE, {"meta": {
        "command_id": key, "actor": {"kind": "operator", "id": "t1", "name": "ann"},
        "reason": "first", "correlation_id": "c-1"}, **body})
    # who, why and the correlation may differ between retries of one request
    again = await call(nc, CREATE, {"meta": {
        "command_id": key, "actor": {"kind": "operator", "id": "t1", "name": "ann", "ip": "10.0.0.1"},
        "reason": "second try", "correlation_id": "c-2"}, **body})
    assert again == first
    forget_answers(service)
    assert await call(nc, CREATE, {"meta": {"command_id": key}, **body}) == first
    assert await count_events(service, first["id"]) == 1
    stored = await service.pool.fetchval("SELECT fingerprint FROM commands WHERE command_id = $1", key)
    assert stored is not None and len(stored) == 32


async def test_the_same_key_with_another_request_is_a_conflict_and_appends_nothing(
    nc: NatsClient, service: CustomerService
) -> None:
    key = str(uuid.uuid4())
    first = await call(nc, CREATE, {"meta": {"command_id": key}, "customer": {"name": f"a-{key[:8]}"}})
    other_name = f"b-{key[:8]}"
    before = await count_events(service)
    assert_key_reused(await call(nc, CREATE, {"meta": {"command_id": key}, "customer": {"name": other_name}}))
    assert await count_events(service) == before and await customers_named(service, other_name) == 0

    update = {"meta": {"command_id": f"u-{key}"}, "customer_id": first["id"], "changes": {"channels": 3}}
    one = await call(nc, UPDATE, update)
    assert one["channels"] == 3 and one["version"] == 2
    assert_key_reused(await call(nc, UPDATE, {**update, "changes": {"channels": 4}}))
    assert_key_reused(await call(nc, UPDATE, {**update, "expected_version": 2}))
    # another kind of command with the key
    assert_key_reused(await call(nc, "customer.cmd.delete", {"meta": update["meta"], "customer_id": first["id"]}))
    forget_answers(service, first["id"])
    assert_key_reused(await call(nc, UPDATE, {**update, "changes": {"channels": 5}}))
    assert await call(nc, UPDATE, update) == one
    assert await count_events(service, first["id"]) == 2
    card = await call(nc, "customer.query.get", {"customer_id": first["id"]})
    assert card["channels"] == 3 and card["status"] == "active"


async def test_one_batch_with_one_key_and_two_requests_creates_one_customer(
    nc: NatsClient, service: CustomerService
) -> None:
    key = str(uuid.uuid4())
    names = [f"x-{key[:8]}", f"y-{key[:8]}"]
    sent = [names[i % 2] for i in range(16)]
    replies = await asyncio.gather(
        *[call(nc, CREATE, {"meta": {"command_id": key}, "customer": {"name": n}}) for n in sent]
    )
    created = {r["id"] for r in replies if "id" in r}
    assert len(created) == 1
    winner = next(r["name"] for r in replies if "id" in r)
    for name, reply in zip(sent, replies, strict=True):
        if name == winner:
            assert reply.get("id") in created, reply
        else:
            assert_key_reused(reply)
    assert sum([await customers_named(service, n) for n in names]) == 1


async def test_a_reply_stored_without_a_fingerprint_answers_as_before(
    nc: NatsClient, service: CustomerService
) -> None:
    key = str(uuid.uuid4())
    first = await call(nc, CREATE, {"meta": {"command_id": key}, "customer": {"name": f"old-{key[:8]}"}})
    await service.pool.execute("UPDATE commands SET fingerprint = NULL WHERE command_id = $1", key)
    forget_answers(service)
    other = await call(nc, CREATE, {"meta": {"command_id": key}, "customer": {"name": f"new-{key[:8]}"}})
    assert other == first


async def test_contact_requests_with_generated_values_retry_to_the_first_answer(
    nc: NatsClient, service: CustomerService
) -> None:
    card = await create(nc)
    key = str(uuid.uuid4())
    add = {"meta": {"command_id": key}, "customer_id": card["id"], "auto_generate_password": False,
           "password": "typed-Password-0042", "contact": {"name": "Ann", "email": f"{key[:8]}@example.com"}}
    one = await call(nc, "customer.cmd.contact.add", add)
    assert len(one["contacts"]) == 1, one
    # a new contact id and password hash are made for each attempt: the request is what counts
    assert await call(nc, "customer.cmd.contact.add", add) == one
    other = {**add, "contact": {"name": "Bob", "email": f"b{key[:8]}@example.com"}}
    assert_key_reused(await call(nc, "customer.cmd.contact.add", other))
    assert await count_events(service, card["id"]) == 2


async def test_a_bulk_edit_key_reused_for_another_change_fails_each_customer(
    nc: NatsClient, service: CustomerService
) -> None:
    cards = [await create(nc) for _ in range(2)]
    body = {"meta": {"command_id": str(uuid.uuid4())}, "ids": [c["id"] for c in cards], "add_tags": ["x"]}
    first = await call(nc, "customer.cmd.bulk.update", body)
    assert all(r["ok"] for r in first["results"]), first
    other = await call(nc, "customer.cmd.bulk.update", {**body, "add_tags": ["y"]})
    assert [r["ok"] for r in other["results"]] == [False, False]
    assert {r["error"]["code"] for r in other["results"]} == {"conflict"}
    assert [await count_events(service, c["id"]) for c in cards] == [2, 2]
