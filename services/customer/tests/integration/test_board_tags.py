"""The board's tag rows (`customer_tags`) follow the customers whichever way they are written."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from customer.bootstrap import CustomerService
from nats.aio.client import Client as NatsClient

from .conftest import call, create
from .test_bulk_upload import rows, upload

pytestmark = pytest.mark.servers

DERIVED = (
    "SELECT DISTINCT t AS tag, id AS customer_id, lower(name) AS name_key, created_at AS created"
    " FROM customers, unnest(tags) AS t WHERE NOT deleted AND id = ANY($1::uuid[])"
)
STORED = "SELECT tag, customer_id, name_key, created FROM customer_tags WHERE customer_id = ANY($1::uuid[])"


async def tag_rows(service: CustomerService, ids: list[str]) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """(rows derived from the customers, rows the table holds) for these customers."""
    derived = {tuple(r) for r in await service.pool.fetch(DERIVED, ids)}
    stored = {tuple(r) for r in await service.pool.fetch(STORED, ids)}
    return derived, stored


async def test_a_batch_of_creates_writes_each_customers_tag_rows(nc: NatsClient, service: CustomerService) -> None:
    prefix = uuid.uuid4().hex[:6]
    # concurrent creates share one append (one INSERT of many customers)
    cards = await asyncio.gather(*[
        create(nc, f"{prefix}-{i}", tags=["vip", "eu", "vip"] if i % 3 else [], currency="EUR")
        for i in range(24)])
    ids = [c["id"] for c in cards]
    derived, stored = await tag_rows(service, ids)
    assert stored == derived and len(stored) == 16 * 2  # duplicates in a card's tags count once


async def test_updates_deletes_and_uploads_keep_the_tag_rows(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc, tags=["a", "b"])
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 3}})
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"tags": ["b", "c"], "name": "Renamed X"}})
    derived, stored = await tag_rows(service, [card["id"]])
    assert stored == derived and {r[0] for r in stored} == {"b", "c"} and {r[2] for r in stored} == {"renamed x"}
    await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    assert await tag_rows(service, [card["id"]]) == (set(), set())
    summary, results = await upload(nc, rows(*[{"name": f"up-{uuid.uuid4().hex[:8]}", "currency": "EUR",
                                                "tags": ["bulk", f"t{i}"]} for i in range(5)]))
    assert summary["created"] == 5
    derived, stored = await tag_rows(service, [r["id"] for r in results])
    assert stored == derived and len(stored) == 10
