"""Bulk upload, bulk edit/delete and number blocks through the gateway, the customer service in-process."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings, start
from devtools.testing.waiting import wait_for
from gateway.csv_export import COLUMNS, flatten

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customer_service(gateway: Any) -> AsyncIterator[CustomerService]:
    """The customer service on the gateway's NATS and database, in this process."""
    service = await start(CustomerSettings(nats_url=gateway.settings.nats_url,
                                           database_url=gateway.settings.database_url))

    async def ready() -> bool:
        return (await gateway.client.get("/v1/settings/number-range")).status_code == 200

    await wait_for(ready, timeout=20, message="the customer service behind the gateway")
    yield service
    await service.stop()


@pytest.fixture
def client(gateway: Any, customer_service: CustomerService) -> Any:
    return gateway.client


def name(prefix: str = "bulk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


async def post_csv(client: Any, body: bytes, **params: str) -> Any:
    return await client.post("/v1/customers/bulk", content=body, params=params,
                             headers={"Content-Type": "text/csv"})


async def test_csv_all_or_nothing_names_the_row_and_column(client: Any) -> None:
    good = name()
    body = to_csv([["name", "currency", "tax", "address.country", "tags"],
                   [good, "EUR", "20", "de", "a;b"], [name(), "EUR", "1e2", "DE", ""]])
    reply = await post_csv(client, body)
    assert reply.status_code == 422, reply.text
    doc = reply.json()
    assert doc["error"]["code"] == "validation_error" and doc["created"] == 0
    assert doc["error"]["details"][0]["field"] == "rows[2].tax"
    assert [r["status"] for r in doc["results"]] == ["not_created", "failed"]
    assert doc["results"][1]["line"] == 3 and doc["results"][1]["errors"][0]["field"] == "tax"
    board = (await client.get("/v1/customers", params={"q": good})).json()
    assert board["total"] == 0


async def test_csv_best_effort_creates_the_good_rows(client: Any) -> None:
    good = name()
    body = to_csv([["name", "currency", "channels", "address.city", "verification.email_required", "tags"],
                   [good, "gbp", "30", "Leeds", "true", "vip;north"], [name(), "", "3", "", "", ""]])
    reply = await post_csv(client, body, mode="best_effort")
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["created"] == 1 and doc["failed"] == 1 and "error" not in doc
    card = (await client.get(f"/v1/customers/{doc['results'][0]['id']}")).json()
    assert card["name"] == good and card["currency"] == "GBP" and card["channels"] == 30
    assert card["address"]["city"] == "Leeds" and card["verification"]["email_required"] is True
    assert card["tags"] == ["north", "vip"]
    assert doc["results"][1]["errors"][0]["field"] == "currency"


async def test_an_export_uploads_back(client: Any) -> None:
    tag = name("tag")
    for _ in range(3):
        assert (await client.post("/v1/customers", json={
            "name": name("src"), "currency": "EUR", "tags": [tag, "x"], "tax": "7.5", "notes": "line1\nline2",
            "address": {"city": "Lyon", "country": "FR"}, "config_toml": "[a]\nb = 1\n"})).status_code == 201
    export = await client.get("/v1/customers", params={"tag": tag, "format": "csv"})
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == list(COLUMNS) and len(rows) == 4
    renamed = [rows[0]] + [[f"copy-{c}" if h == "name" else c for h, c in zip(rows[0], r, strict=True)] for r in rows[1:]]
    reply = await post_csv(client, to_csv(renamed))
    assert reply.status_code == 201, reply.text
    copies = [(await client.get(f"/v1/customers/{r['id']}")).json() for r in reply.json()["results"]]
    originals = {c["name"]: c for c in (await client.get("/v1/customers", params={"tag": tag, "limit": 10})).json()["items"]
                 if not c["name"].startswith("copy-")}
    for copy in copies:
        original = originals[copy["name"].removeprefix("copy-")]
        same = ["tags", "tax", "notes", "address", "config_toml", "currency", "verification"]
        assert {k: copy[k] for k in same} == {k: original[k] for k in same}
    assert flatten(copies[0])[1].startswith("copy-")


async def test_json_and_ndjson_uploads_and_exponents(client: Any) -> None:
    items = [{"name": name(), "currency": "USD", "debit_limit": 10.50}, {"name": name(), "currency": "USD", "channels": 1e3}]
    text = json.dumps(items).replace("1000.0", "1e3")
    reply = await client.post("/v1/customers/bulk", content=text, params={"mode": "best_effort"},
                              headers={"Content-Type": "application/json"})
    doc = reply.json()
    assert reply.status_code == 200, reply.text
    assert doc["results"][1]["errors"][0]["field"] == "channels"
    assert "scientific" in doc["results"][1]["errors"][0]["message"]
    assert (await client.get(f"/v1/customers/{doc['results'][0]['id']}")).json()["debit_limit"] == "10.5"
    lines = "\n".join(json.dumps({"name": name(), "currency": "CHF"}) for _ in range(3)) + "\n"
    nd = await client.post("/v1/customers/bulk", content=lines, headers={"Content-Type": "application/x-ndjson"})
    assert nd.status_code == 201 and nd.json()["created"] == 3


async def test_bad_uploads_answer_clear_errors(client: Any) -> None:
    unknown = await post_csv(client, to_csv([["name", "currency", "colour"], ["a", "USD", "red"]]))
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "colour"
    missing = await post_csv(client, to_csv([["name"], ["a"]]))
    assert missing.status_code == 422 and "currency" in missing.json()["error"]["message"]
    empty = await post_csv(client, to_csv([["name", "currency"]]))
    assert empty.status_code == 422
    latin = await post_csv(client, "name,currency\nCaf\xe9,EUR\n".encode("latin-1"))
    assert latin.status_code == 422 and "UTF-8" in latin.json()["error"]["message"]
    xml = await client.post("/v1/customers/bulk", content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert xml.status_code == 415
    broken = await client.post("/v1/customers/bulk", content=b'[{"name": "x", ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "validation_error"


async def test_duplicates_in_file_and_retry_with_idempotency_key(client: Any) -> None:
    twin = name()
    body = to_csv([["name", "currency"], [twin, "EUR"], [twin.upper(), "EUR"]])
    key = {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "text/csv"}
    first = await client.post("/v1/customers/bulk", content=body, params={"mode": "best_effort"}, headers=key)
    again = await client.post("/v1/customers/bulk", content=body, params={"mode": "best_effort"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json()["results"] == again.json()["results"]
    assert "row 1" in first.json()["results"][1]["errors"][0]["message"]
    # the key with another file, or the same file in another mode: refused, nothing created
    other = name()
    for content, mode in ((to_csv([["name", "currency"], [other, "EUR"]]), "best_effort"), (body, "all_or_nothing")):
        refused = await client.post("/v1/customers/bulk", content=content, params={"mode": mode}, headers=key)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["details"][0]["type"] == "idempotency_key_reused"
    assert (await client.get("/v1/customers", params={"q": other})).json()["total"] == 0


async def test_a_few_thousand_rows_over_http(client: Any) -> None:
    prefix = name("many")
    body = to_csv([["name", "currency", "notes"]] + [[f"{prefix}-{i}", "USD", "x" * 300] for i in range(4000)])
    reply = await post_csv(client, body, results="errors")
    assert reply.status_code == 201, reply.text[:500]
    doc = reply.json()
    assert doc["created"] == 4000 and doc["results"] == []
    assert (await client.get("/v1/customers", params={"q": prefix, "limit": 1})).json()["total"] == 4000


async def test_bulk_update_and_delete(client: Any, customer_service: CustomerService) -> None:
    tag = name("edit")
    ids = [(await client.post("/v1/customers", json={"name": name(), "tags": [tag]})).json()["id"] for _ in range(5)]
    by_filter = await client.post("/v1/customers/bulk-update", headers={"X-Correlation-Id": f"corr-{tag}"}, json={
        "filter": {"tag": [tag]}, "set": {"channels": 9, "status": "inactive"}, "add_tags": ["done"]})
    assert by_filter.status_code == 200, by_filter.text
    doc = by_filter.json()
    assert doc["matched"] == 5 and doc["succeeded"] == 5 and doc["failed"] == 0
    assert doc["correlation_id"] == f"corr-{tag}"
    meta = await customer_service.pool.fetch(
        "SELECT DISTINCT metadata->>'correlation_id' AS c FROM events WHERE stream_id = ANY($1::text[]) AND version > 1", ids)
    assert [m["c"] for m in meta] == [f"corr-{tag}"]
    gone = str(uuid.uuid4())
    deleted = await client.post("/v1/customers/bulk-delete", json={"ids": [*ids[:2], gone]})
    results = deleted.json()["results"]
    assert [r["ok"] for r in results] == [True, True, False] and results[2]["error"]["code"] == "not_found"
    assert (await client.get(f"/v1/customers/{ids[0]}")).status_code == 404
    nothing = await client.post("/v1/customers/bulk-update", json={"ids": ids})
    assert nothing.status_code == 422


async def test_roles(gateway: Any, customer_service: CustomerService) -> None:
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    operator = gateway.as_token(await gateway.make_token("operator"))
    c = gateway.client
    assert (await c.post("/v1/customers/bulk", content=b"name,currency\n", headers={**viewer, "Content-Type": "text/csv"})).status_code == 403
    assert (await c.post("/v1/customers/bulk-delete", json={"ids": [str(uuid.uuid4())]}, headers=viewer)).status_code == 403
    assert (await c.put("/v1/settings/number-range", json={"start": 1, "block_size": 10}, headers=operator)).status_code == 403
    assert (await c.get("/v1/settings/number-range", headers=viewer)).status_code == 200


async def test_number_blocks_over_http(client: Any) -> None:
    card = (await client.post("/v1/customers", json={"name": name()})).json()
    none = await client.post(f"/v1/customers/{card['id']}/number-blocks")
    assert none.status_code == 409 and none.json()["error"]["code"] == "number_range_not_set"
    rng = await client.put("/v1/settings/number-range", json={"start": 1000, "block_size": 100, "end": 1199})
    assert rng.status_code == 200 and rng.json()["end"] == 1199
    one = await client.post(f"/v1/customers/{card['id']}/number-blocks")
    two = await client.post(f"/v1/customers/{card['id']}/number-blocks")
    assert one.status_code == two.status_code == 201
    assert [one.json()["block"]["start"], two.json()["block"]["start"]] == [1000, 1100]
    full = await client.post(f"/v1/customers/{card['id']}/number-blocks")
    assert full.status_code == 409 and full.json()["error"]["code"] == "number_range_exhausted"
    owner = (await client.get("/v1/number-blocks/owner", params={"number": 1150})).json()
    assert owner["customer_id"] == card["id"]
    released = await client.delete(f"/v1/customers/{card['id']}/number-blocks/{one.json()['block']['id']}")
    assert released.status_code == 200 and len(released.json()["number_blocks"]) == 1
    again = await client.post(f"/v1/customers/{card['id']}/number-blocks")
    assert again.json()["block"]["start"] == 1000
