"""The ledger's tax history follows the events (migration 0010's trigger, its WHEN narrowed by 0017)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from customer.bootstrap import CustomerService
from nats.aio.client import Client as NatsClient

from .conftest import call, create

pytestmark = pytest.mark.servers

HISTORY = "SELECT tax FROM tax_history WHERE customer_id = $1 ORDER BY effective_at"


async def test_a_create_and_each_tax_change_write_a_row_other_updates_none(
    nc: NatsClient, service: CustomerService
) -> None:
    card = await create(nc, tax="19", currency="EUR")
    cid = card["id"]
    assert [r["tax"] for r in await service.pool.fetch(HISTORY, cid)] == [Decimal("19")]
    for change in ({"channels": 4}, {"notes": "no tax here"}, {"tax": "7.5"}, {"channels": 5}, {"tax": "0"}):
        reply = await call(nc, "customer.cmd.update", {"customer_id": cid, "changes": change})
        assert "error" not in reply, reply
    assert [r["tax"] for r in await service.pool.fetch(HISTORY, cid)] == [Decimal("19"), Decimal("7.5"), Decimal(0)]


async def test_batched_creates_each_get_their_row(nc: NatsClient, service: CustomerService) -> None:
    cards = await asyncio.gather(*[create(nc, tax=str(i), currency="EUR") for i in range(20)])
    rows = await service.pool.fetch(
        "SELECT customer_id, tax FROM tax_history WHERE customer_id = ANY($1::text[])", [c["id"] for c in cards])
    assert {(r["customer_id"], r["tax"]) for r in rows} == {(c["id"], Decimal(i)) for i, c in enumerate(cards)}
