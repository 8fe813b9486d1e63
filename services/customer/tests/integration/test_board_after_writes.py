"""The board's walks right after a burst of writes, before autovacuum has been by (real PostgreSQL)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from customer.bootstrap import SCHEMA, CustomerService
from customer.projections import board
from shared.contracts.customer import ListCustomers

pytestmark = pytest.mark.asyncio(loop_scope="session")

# board rows written straight into the read model (no events: only the plans are tested here)
ROWS = """
INSERT INTO customers (id, name, status, currency, country, tags, channels, cps, debit_limit, tax,
                       minimum_payment, portal_access, deleted, version, created_at, updated_at, search, card)
SELECT id, name, 'active', currency, country, '{}', 1, 5, 0, 0, 0, false, false, 1, now(), now(), name,
       json_build_object('id', id, 'name', name, 'country', country, 'currency', currency,
                         'notes', repeat('x', 600))::text
FROM (SELECT gen_random_uuid() AS id, format('%s %s', $1::text, lpad(i::text, 6, '0')) AS name,
             CASE WHEN $2 THEN (ARRAY['DE', 'FR', 'GB', 'US'])[i % 4 + 1] END AS country,
             (ARRAY['EUR', 'USD', 'GBP'])[i % 3 + 1] AS currency
      FROM generate_series(1, $3::int) AS i) AS made
"""


class Recorder:
    """The walk pool, noting the statements the board sends it."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.sent.append((sql, args))
        return await self.pool.fetch(sql, *args)


def index_names(plan: Any) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= index_names(child)
    return found


async def test_a_country_page_walks_the_country_index_before_autovacuum(service: CustomerService) -> None:
    """20k customers vacuumed, then 10k new ones without a country that sort first by name, not
    yet all-visible: a page of DE + EUR still walks customers_board_country (the name index in
    heap order filtered out the 10k new rows first: 18k buffers instead of a few)."""
    pool = service.pool
    await pool.execute("ALTER TABLE customers SET (autovacuum_enabled = off)")  # hold the moment
    try:
        await pool.execute(ROWS, "seed", True, 20_000)
        await pool.execute("VACUUM ANALYZE customers")
        await pool.execute(ROWS, "burst", False, 10_000)
        walk = await board.open_walk_pool(service.settings.database_url, SCHEMA)
        try:
            recorder = Recorder(walk)
            query = ListCustomers(country=["DE"], currency=["EUR"], limit=50)
            page = orjson.loads(await board.list_customers(pool, query, None, recorder))  # type: ignore[arg-type]
            [(sql, args)] = recorder.sent
            plan = orjson.loads(await walk.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))[0]["Plan"]
        finally:
            await walk.close()
    finally:
        await pool.execute("ALTER TABLE customers RESET (autovacuum_enabled)")
    assert page["total"] == 1_666 and len(page["items"]) == 50
    assert all(c["country"] == "DE" and c["currency"] == "EUR" for c in page["items"])
    names = [c["name"] for c in page["items"]]
    assert names == sorted(names) and names[0].startswith("seed ")
    used = index_names(plan)
    assert "customers_board_country" in used, plan
    assert not used & {"customers_name_uq", "customers_board_name"}, plan


async def test_a_search_page_skips_deleted_customers_after_its_fence(service: CustomerService) -> None:
    """A search with few matches is driven by the search index alone: `NOT deleted` is tested after
    the fence, never by ANDing a whole scan of a partial index (customers_filters: 5-10 ms over
    130k customers after a burst of writes); deleted matches are neither listed nor counted."""
    pool = service.pool
    await pool.execute(ROWS, "find", True, 3_000)
    await pool.execute("UPDATE customers SET deleted = true WHERE name IN ('find 000120', 'find 000121')")
    await pool.execute("ANALYZE customers")
    recorder = Recorder(pool)
    query = ListCustomers(q="find 00012", limit=5)
    page = orjson.loads(await board.list_customers(recorder, query))  # type: ignore[arg-type]
    assert page["total"] == 8 and page["status_counts"]["active"] == 8
    names = [c["name"] for c in page["items"]]
    assert names == [f"find 00012{i}" for i in range(2, 7)]
    rest = orjson.loads(await board.list_customers(pool, query.model_copy(update={"cursor": page["next_cursor"]})))
    assert [c["name"] for c in rest["items"]] == [f"find 00012{i}" for i in range(7, 10)]
    assert len(recorder.sent) == 2  # the count and the page
    for sql, args in recorder.sent:
        plan = orjson.loads(await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))[0]["Plan"]
        assert index_names(plan) <= {"customers_search", "customers_pkey"}, plan
