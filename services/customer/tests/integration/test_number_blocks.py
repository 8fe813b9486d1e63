"""Number range settings and internal number blocks over NATS, against real servers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from customer.bootstrap import CustomerService, start
from nats.aio.client import Client as NatsClient

from .conftest import call, create

pytestmark = pytest.mark.servers

ASSIGN = "customer.cmd.number-block.assign"
RELEASE = "customer.cmd.number-block.release"
SET_RANGE = "customer.cmd.settings.number-range"
OWNER = "customer.query.number-owner"


async def assign(nc: NatsClient, customer_id: str, **meta: Any) -> dict[str, Any]:
    return await call(nc, ASSIGN, {"customer_id": customer_id, "meta": meta})  # type: ignore[no-any-return]


async def test_no_range_set_is_a_clear_error(nc: NatsClient, service: CustomerService) -> None:
    # this module's database starts without a range: the first test sees none
    assert (await call(nc, "customer.query.settings.number-range", {}))["start"] is None
    card = await create(nc)
    reply = await assign(nc, card["id"])
    assert reply["error"]["code"] == "number_range_not_set"
    assert "number-range" in reply["error"]["message"]
    assert await service.pool.fetchval("SELECT count(*) FROM number_blocks") == 0


async def test_concurrent_assignments_share_nothing_and_leave_no_gap(
    nc: NatsClient, service: CustomerService
) -> None:
    reply = await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": 99_999})
    assert reply["start"] == 1000 and reply["block_size"] == 1000, reply
    customers = [await create(nc) for _ in range(30)]
    doomed = [await create(nc) for _ in range(5)]
    for card in doomed:  # assignments to these fail (deleted): they must not leave holes
        await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    targets = [c["id"] for c in customers] + [c["id"] for c in doomed]
    replies = await asyncio.gather(*[assign(nc, cid) for cid in targets])
    ok = [r for r in replies if "block" in r]
    assert len(ok) == 30
    assert {r["error"]["code"] for r in replies if "error" in r} == {"customer_deleted"}
    starts = sorted(r["block"]["start"] for r in ok)
    assert starts == [1000 + 1000 * k for k in range(30)]  # no overlap, no gap
    for r in ok:
        assert r["block"]["end"] == r["block"]["start"] + 999
        assert r["block"] in r["customer"]["number_blocks"]
    rows = await service.pool.fetch("SELECT block_index, customer_id FROM number_blocks ORDER BY 1")
    assert [r["block_index"] for r in rows] == list(range(30))


async def test_release_then_reassign_takes_the_freed_block(nc: NatsClient) -> None:
    a, b = await create(nc), await create(nc)
    first = await assign(nc, a["id"])
    second = await assign(nc, a["id"])
    released = await call(nc, RELEASE, {"customer_id": a["id"], "block_id": first["block"]["id"]})
    assert [blk["id"] for blk in released["number_blocks"]] == [second["block"]["id"]]
    again = await assign(nc, b["id"])
    assert again["block"]["start"] == first["block"]["start"]  # the lowest free block
    owner = await call(nc, OWNER, {"number": first["block"]["start"] + 5})
    assert owner["customer_id"] == b["id"] and owner["block"]["id"] == again["block"]["id"]
    missing = await call(nc, RELEASE, {"customer_id": a["id"], "block_id": str(uuid.uuid4())})
    assert missing["error"]["code"] == "not_found"


async def test_owner_of_a_free_number_is_nobody(nc: NatsClient) -> None:
    reply = await call(nc, OWNER, {"number": "5"})
    assert reply == {"number": 5, "customer_id": None, "block": None}
    bad = await call(nc, OWNER, {"number": "1e3"})
    assert bad["error"]["code"] == "validation_error"


async def test_retried_assignment_returns_the_same_block(nc: NatsClient) -> None:
    card = await create(nc)
    key = str(uuid.uuid4())
    one = await assign(nc, card["id"], command_id=key)
    two = await assign(nc, card["id"], command_id=key)
    assert one["block"] == two["block"]
    assert len(two["customer"]["number_blocks"]) == 1


async def test_deleting_a_customer_frees_its_blocks(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    block = (await assign(nc, card["id"]))["block"]
    await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    assert (await call(nc, OWNER, {"number": block["start"]}))["customer_id"] is None


async def test_range_rules_while_blocks_are_assigned(nc: NatsClient, service: CustomerService) -> None:
    highest = await service.pool.fetchval("SELECT max(last_number) FROM number_blocks")
    moved = await call(nc, SET_RANGE, {"start": 5000, "block_size": 1000, "end": 99_999})
    assert moved["error"]["code"] == "conflict"
    lower = await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": highest - 1})
    assert lower["error"]["code"] == "conflict"
    bad = await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": 1500})
    assert bad["error"]["code"] == "validation_error"
    # the range ends right after the last block: the next assignment finds it exhausted
    used = await service.pool.fetchval("SELECT count(*) FROM number_blocks")
    free = await service.pool.fetchval(
        "SELECT count(*) FROM generate_series(0, (SELECT max(block_index) FROM number_blocks)) k"
        " WHERE k NOT IN (SELECT block_index FROM number_blocks)")
    tight = await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": highest})
    assert tight["end"] == highest, tight
    for _ in range(free):
        assert "block" in await assign(nc, (await create(nc))["id"])
    full = await assign(nc, (await create(nc))["id"])
    assert full["error"]["code"] == "number_range_exhausted", full
    assert await service.pool.fetchval("SELECT count(*) FROM number_blocks") == used + free


async def test_a_retry_after_the_range_filled_returns_the_block_it_got(
    nc: NatsClient, service: CustomerService
) -> None:
    await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": 10**9})
    card, key = await create(nc), str(uuid.uuid4())
    first = await assign(nc, card["id"], command_id=key)
    highest = await service.pool.fetchval("SELECT max(last_number) FROM number_blocks")
    assert "end" in await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": highest})
    while "block" in await assign(nc, (await create(nc))["id"]):
        pass  # fill any hole below: the range is full now
    again = await assign(nc, card["id"], command_id=key)
    assert again["block"] == first["block"], again
    assert len(again["customer"]["number_blocks"]) == 1
    await call(nc, SET_RANGE, {"start": 1000, "block_size": 1000, "end": 10**9})


async def test_two_replicas_assigning_at_once_share_no_block_and_leave_no_gap(
    nc: NatsClient, service: CustomerService
) -> None:
    rng = await call(nc, "customer.query.settings.number-range", {})
    first, size = (rng["start"], rng["block_size"]) if rng["start"] is not None else (1000, 1000)
    await call(nc, SET_RANGE, {"start": first, "block_size": size, "end": 10**9})
    other = await start(service.settings)  # a second replica on the same database and NATS
    try:
        customers = [(await create(nc))["id"] for _ in range(24)]
        replies = await asyncio.gather(*[assign(nc, cid) for cid in customers for _ in range(2)])
        assert all("block" in r for r in replies), [r for r in replies if "block" not in r][:3]
        rows = await service.pool.fetch("SELECT block_index, customer_id FROM number_blocks ORDER BY 1")
        indexes = [r["block_index"] for r in rows]
        assert indexes == list(range(len(indexes)))  # no gap anywhere, none shared (primary key)
        mine = [r for r in rows if str(r["customer_id"]) in customers]
        assert len(mine) == 48
        served = other.rpc.handled
        assert served > 0, "the second replica took no request"
    finally:
        await other.stop()
