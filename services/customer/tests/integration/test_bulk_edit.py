"""Bulk edit and bulk delete over NATS: own events per customer, one correlation id, per-customer results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from customer.bootstrap import CustomerService
from nats.aio.client import Client as NatsClient

from .conftest import call, create

pytestmark = pytest.mark.servers


async def events_of(service: CustomerService, ids: list[str], after_version: int = 1) -> list[Any]:
    return list(await service.pool.fetch(
        "SELECT stream_id, type, data::text AS data, metadata->>'correlation_id' AS correlation"
        " FROM events WHERE stream_id = ANY($1::text[]) AND version > $2 ORDER BY stream_id, version",
        ids, after_version))


async def test_update_by_ids_gives_each_customer_its_own_events(nc: NatsClient, service: CustomerService) -> None:
    cards = [await create(nc, tags=["old", "keep"], address={"city": "Leeds", "country": "GB"}) for _ in range(6)]
    ids = [c["id"] for c in cards]
    cid = f"bulk-edit-{uuid.uuid4().hex}"
    reply = await call(nc, "customer.cmd.bulk.update", {
        "meta": {"correlation_id": cid}, "ids": [*ids, str(uuid.uuid4())],
        "set": {"channels": 12, "cps": "2.5", "status": "inactive", "portal_access": False,
                "country": "de", "tax": "19", "debit_limit": "-10"},
        "add_tags": ["vip"], "remove_tags": ["old"],
    })
    assert reply["correlation_id"] == cid
    results = reply["results"]
    assert [r["ok"] for r in results] == [True] * 6 + [False]
    assert results[-1]["error"]["code"] == "not_found"
    assert [r["version"] for r in results[:6]] == [3] * 6  # an update and a status change each
    card = await call(nc, "customer.query.get", {"customer_id": ids[0]})
    assert card["channels"] == 12 and card["cps"] == "2.5" and card["status"] == "inactive"
    assert card["address"] == {**cards[0]["address"], "country": "DE"}
    assert card["tags"] == ["keep", "vip"] and card["tax"] == "19" and card["debit_limit"] == "-10"
    events = await events_of(service, ids)
    assert len(events) == 12 and {e["correlation"] for e in events} == {cid}
    assert {e["type"] for e in events} == {"CustomerUpdated", "CustomerStatusChanged"}


async def test_update_by_filter_pages_through_every_match(nc: NatsClient, service: CustomerService) -> None:
    tag = f"grp-{uuid.uuid4().hex[:8]}"
    ids = {(await create(nc, tags=[tag]))["id"] for _ in range(7)}
    other = await create(nc)
    cid = f"bulk-filter-{uuid.uuid4().hex}"
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        reply = await call(nc, "customer.cmd.bulk.update", {
            "meta": {"correlation_id": cid}, "filter": {"tag": [tag]}, "limit": 3, "cursor": cursor,
            "set": {"channels": 5},
        })
        assert reply["matched"] == 7
        seen += reply["results"]
        cursor = reply["next_cursor"]
        if cursor is None:
            break
    assert {r["id"] for r in seen} == ids and all(r["ok"] for r in seen)
    assert (await call(nc, "customer.query.get", {"customer_id": other["id"]}))["channels"] == 0
    assert {e["correlation"] for e in await events_of(service, list(ids))} == {cid}


async def test_a_rule_failure_is_that_customers_result_only(nc: NatsClient) -> None:
    waiting = await create(nc, status="pending_approval")
    fine = await create(nc)
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reply = await call(nc, "customer.cmd.bulk.update", {
        "ids": [waiting["id"], fine["id"]], "set": {"status": "penalty", "until": until},
    })
    assert reply["results"][0]["error"]["code"] in {"validation_error", "invalid_status_transition"}
    assert reply["results"][1]["ok"], reply  # the rule failed for one customer only
    # a penalty without `until` is wrong for every customer: one error on set.until, no results
    no_until = await call(nc, "customer.cmd.bulk.update", {"ids": [fine["id"]], "set": {"status": "penalty"}})
    assert no_until["error"]["code"] == "validation_error"
    assert no_until["error"]["details"][0]["field"] == "set.until"
    bad = await call(nc, "customer.cmd.bulk.update", {"ids": [fine["id"]], "set": {"tax": "1e2"}})
    assert bad["error"]["code"] == "validation_error" and bad["error"]["details"][0]["field"] == "set.tax"
    neither = await call(nc, "customer.cmd.bulk.update", {"set": {"channels": 1}})
    assert neither["error"]["code"] == "validation_error"


async def test_retried_bulk_edit_changes_nothing_twice(nc: NatsClient, service: CustomerService) -> None:
    cards = [await create(nc) for _ in range(3)]
    body = {"meta": {"command_id": str(uuid.uuid4())}, "ids": [c["id"] for c in cards], "add_tags": ["x"]}
    first = await call(nc, "customer.cmd.bulk.update", body)
    again = await call(nc, "customer.cmd.bulk.update", body)
    assert first["results"] == again["results"]
    assert len(await events_of(service, [c["id"] for c in cards])) == 3


async def test_bulk_delete(nc: NatsClient, service: CustomerService) -> None:
    cards = [await create(nc) for _ in range(4)]
    cid = f"bulk-del-{uuid.uuid4().hex}"
    reply = await call(nc, "customer.cmd.bulk.delete", {
        "meta": {"correlation_id": cid}, "ids": [c["id"] for c in cards] + [cards[0]["id"]]})
    assert len(reply["results"]) == 4 and all(r["ok"] for r in reply["results"])
    again = await call(nc, "customer.cmd.bulk.delete", {"ids": [cards[0]["id"]]})
    assert again["results"][0]["error"]["code"] == "customer_deleted"
    events = await events_of(service, [c["id"] for c in cards])
    assert [e["type"] for e in events] == ["CustomerDeleted"] * 4 and {e["correlation"] for e in events} == {cid}
    # their names are free again
    await create(nc, cards[0]["name"])
