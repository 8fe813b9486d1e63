"""The board query: search, filters, sort, cursor paging, from the read model."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from customer.bootstrap import CustomerService
from customer.projections import board
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient

from .conftest import call, create


async def page_all(nc: NatsClient, query: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await call(nc, "customer.query.list", {**query, "cursor": cursor})
        assert "error" not in page, page
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(params=["filter first", "sort order first"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a page is read: few matches are sorted after filtering, many are found by
    walking the sort's order (the threshold is a count of matches; 0 forces the walk)."""
    if request.param == "sort order first":
        monkeypatch.setattr(board, "FILTER_FIRST_MAX", 0)
    return str(request.param)


async def test_filters_search_sort_and_paging(nc: NatsClient, plan: str) -> None:
    tag = f"board-{uuid.uuid4().hex[:6]}"
    made = []
    for i in range(7):
        made.append(await create(
            nc, f"{tag} Carrier {i}", tags=[tag, "even" if i % 2 == 0 else "odd"],
            currency="EUR" if i < 3 else "USD", channels=10 - i,
            address={"country": "DE" if i < 4 else "FR"}, website=f"https://c{i}.{tag}.example",
        ))
    await call(nc, "customer.cmd.set-status", {"customer_id": made[0]["id"], "status": "inactive"})
    await call(nc, "customer.cmd.delete", {"customer_id": made[6]["id"]})

    everyone = await page_all(nc, {"tag": [tag], "limit": 2})
    assert [c["name"] for c in everyone] == [f"{tag} Carrier {i}" for i in range(6)]

    first = await call(nc, "customer.query.list", {"tag": [tag], "limit": 2})
    assert first["total"] == 6 and len(first["items"]) == 2 and first["next_cursor"]

    by_channels = await page_all(nc, {"tag": [tag], "sort": "-channels", "limit": 4})
    assert [c["channels"] for c in by_channels] == [10, 9, 8, 7, 6, 5]

    eur_de = await page_all(nc, {"tag": [tag], "currency": ["EUR"], "country": ["DE"]})
    assert {c["name"] for c in eur_de} == {f"{tag} Carrier {i}" for i in range(3)}

    inactive = await page_all(nc, {"tag": [tag], "status": ["inactive"]})
    assert [c["id"] for c in inactive] == [made[0]["id"]]

    odd = await page_all(nc, {"tag": [tag, "nope"], "q": "odd"})
    assert {c["name"] for c in odd} == {f"{tag} Carrier {i}" for i in (1, 3, 5)}

    by_site = await page_all(nc, {"q": f"c4.{tag}"})
    assert [c["id"] for c in by_site] == [made[4]["id"]]

    none = await call(nc, "customer.query.list", {"q": f"{tag}%_nothing"})
    assert none == {"items": [], "next_cursor": None, "total": 0,
                    "status_counts": {"active": 0, "inactive": 0, "pending_approval": 0, "penalty": 0}}


async def test_status_counts_are_per_status_under_every_other_filter(nc: NatsClient, plan: str) -> None:
    tag = f"counts-{uuid.uuid4().hex[:6]}"
    made = [await create(nc, f"{tag} {i}", tags=[tag], currency="EUR" if i < 4 else "USD") for i in range(6)]
    await call(nc, "customer.cmd.set-status", {"customer_id": made[0]["id"], "status": "inactive"})
    await call(nc, "customer.cmd.set-status", {"customer_id": made[4]["id"], "status": "inactive"})
    await call(nc, "customer.cmd.delete", {"customer_id": made[5]["id"]})

    everyone = await call(nc, "customer.query.list", {"tag": [tag], "limit": 1})
    assert everyone["status_counts"] == {"active": 3, "inactive": 2, "pending_approval": 0, "penalty": 0}
    assert everyone["total"] == 5
    # a status filter narrows the page and its total, not the counts per status
    inactive = await call(nc, "customer.query.list", {"tag": [tag], "status": ["inactive"]})
    assert inactive["total"] == 2 and {c["id"] for c in inactive["items"]} == {made[0]["id"], made[4]["id"]}
    assert inactive["status_counts"] == everyone["status_counts"]
    eur = await call(nc, "customer.query.list", {"tag": [tag], "currency": ["EUR"], "status": ["active", "penalty"]})
    assert eur["status_counts"] == {"active": 3, "inactive": 1, "pending_approval": 0, "penalty": 0}
    assert eur["total"] == 3 and len(eur["items"]) == 3


async def test_sort_by_every_sortable_column_pages_completely(nc: NatsClient, plan: str) -> None:
    from shared.contracts.customer import SORTABLE

    tag = f"sort-{uuid.uuid4().hex[:6]}"
    for i in range(5):
        await create(nc, tags=[tag], channels=i % 2, cps=str(i % 3), tax=str(i))
    for column in SORTABLE:
        for sort in (column, f"-{column}"):
            rows = await page_all(nc, {"tag": [tag], "sort": sort, "limit": 2})
            assert len({r["id"] for r in rows}) == 5, sort
            if column in {"channels", "cps", "tax"}:  # the values these five differ in
                keys = [float(r[column]) for r in rows]
                assert keys == sorted(keys, reverse=sort.startswith("-")), (sort, keys)


async def test_total_follows_changes_this_process_makes_at_once_and_others_within_its_ttl(
    nc: NatsClient, service: CustomerService,
) -> None:
    tag = f"total-{uuid.uuid4().hex[:6]}"
    first = await create(nc, tags=[tag])
    assert (await call(nc, "customer.query.list", {"tag": [tag]}))["total"] == 1
    await create(nc, tags=[tag])  # committed here: the remembered total is dropped
    assert (await call(nc, "customer.query.list", {"tag": [tag], "limit": 1}))["total"] == 2
    # a change another process commits (a second replica): seen once the total's ttl is over (1 s here)
    await service.pool.execute("UPDATE customers SET deleted = true WHERE id = $1", uuid.UUID(first["id"]))

    async def one_left() -> bool:
        return (await call(nc, "customer.query.list", {"tag": [tag]}))["total"] == 1

    await wait_for(one_left, timeout=5, interval=0.1, message="the total to follow another process's change")


async def test_one_tag_follows_renames_tag_changes_and_deletes(nc: NatsClient, plan: str) -> None:
    tag, other = f"follow-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    a = await create(nc, f"{tag} b", tags=[tag, tag])
    b = await create(nc, f"{tag} c", tags=[tag])
    c = await create(nc, f"{tag} d", tags=[other])

    async def names(sort: str = "name") -> list[str]:
        return [x["name"] for x in await page_all(nc, {"tag": [tag], "sort": sort, "limit": 1})]

    assert await names() == [f"{tag} b", f"{tag} c"]
    await call(nc, "customer.cmd.update", {"customer_id": b["id"], "changes": {"name": f"{tag} a"}})
    assert await names() == [f"{tag} a", f"{tag} b"]
    assert await names("-created_at") == [f"{tag} a", f"{tag} b"]
    await call(nc, "customer.cmd.update", {"customer_id": c["id"], "changes": {"tags": [other, tag]}})
    await call(nc, "customer.cmd.update", {"customer_id": a["id"], "changes": {"tags": [other]}})
    assert await names() == [f"{tag} a", f"{tag} d"]
    await call(nc, "customer.cmd.delete", {"customer_id": b["id"]})
    assert await names("created_at") == [f"{tag} d"]
