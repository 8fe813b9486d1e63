"""Through the gateway to the real customer service process (`python -m customer`)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from devtools.testing.waiting import wait_for

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customer_service(
    gateway, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The customer service as its own process, on the gateway's NATS and database."""
    log_path = Path(tmp_path_factory.mktemp("customer")) / "customer.log"
    env = os.environ | {"PATCHBAY_NATS_URL": gateway.settings.nats_url,
                        "PATCHBAY_DATABASE_URL": gateway.settings.database_url,
                        "PATCHBAY_LOG_FORMAT": "json"}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "customer", env=env, stdout=log, stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )

    async def ready() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"customer service exited: {log_path.read_text()[-2000:]}")
        return (await gateway.client.get("/readyz")).status_code == 200

    try:
        await wait_for(ready, timeout=30, interval=0.1, message="the customer service behind the gateway")
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
def client(gateway, customer_service):
    """The admin client, once the customer service answers."""
    return gateway.client


def unique(prefix: str = "cust") -> str:
    """A random name, so tests need no cleanup."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create(client, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """Create a customer; return its card."""
    reply = await client.post("/v1/customers", json={"name": name or unique(), **fields})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def test_create_then_get_the_same_card(client) -> None:
    reply = await client.post("/v1/customers", json={
        "name": unique("Acme"), "currency": "eur", "tax": "7.5", "address": {"country": "de"},
        "config_toml": "[limits]\nchannels = 10\n", "tags": ["vip"],
    })
    assert reply.status_code == 201, reply.text
    card = reply.json()
    assert card["currency"] == "EUR" and card["address"]["country"] == "DE"
    assert card["config"] == {"limits": {"channels": 10}} and card["version"] == 1
    got = await client.get(reply.headers["Location"])
    assert got.status_code == 200 and got.json() == card
    assert got.headers["ETag"] == '"1"'


async def test_patch_with_if_match_and_412_on_a_stale_version(client) -> None:
    card = await create(client)
    url = f"/v1/customers/{card['id']}"
    first = await client.patch(url, json={"channels": 30}, headers={"If-Match": '"1"'})
    assert first.status_code == 200, first.text
    assert first.json()["channels"] == 30 and first.json()["version"] == 2
    stale = await client.patch(url, json={"channels": 40}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "version_mismatch"
    assert (await client.get(url)).json()["channels"] == 30


async def test_patch_changes_only_the_fields_sent(client) -> None:
    card = await create(client, website="https://example.com", channels=5)
    reply = await client.patch(f"/v1/customers/{card['id']}", json={"notes": "hello"})
    assert reply.status_code == 200, reply.text
    after = reply.json()
    assert after["notes"] == "hello"
    assert after["website"] == "https://example.com" and after["channels"] == 5


async def test_idempotency_key_returns_the_first_card_and_creates_nothing_new(client) -> None:
    name = unique("idem")
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/customers", json={"name": name}, headers=headers)
    second = await client.post("/v1/customers", json={"name": name}, headers=headers)
    assert first.status_code == 201 and second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    board = (await client.get("/v1/customers", params={"q": name})).json()
    assert board["total"] == 1


async def test_the_same_key_with_another_body_is_409_and_changes_nothing(client: Any) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/customers", json={"name": unique("first")}, headers=key)
    assert first.status_code == 201, first.text
    other = unique("other")
    reused = await client.post("/v1/customers", json={"name": other}, headers=key)
    assert reused.status_code == 409, reused.text
    error = reused.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == "this Idempotency-Key was already used for another request"
    assert (await client.get("/v1/customers", params={"q": other})).json()["total"] == 0
    url = f"/v1/customers/{first.json()['id']}"
    patch = {"Idempotency-Key": str(uuid.uuid4())}
    one = await client.patch(url, json={"channels": 7}, headers=patch)
    again = await client.patch(url, json={"channels": 7}, headers=patch)
    assert one.status_code == again.status_code == 200 and again.json() == one.json()
    assert (await client.patch(url, json={"channels": 8}, headers=patch)).status_code == 409
    card = (await client.get(url)).json()
    assert card["channels"] == 7 and card["version"] == 2  # one event per request that changed it


async def test_two_tokens_with_the_same_key_make_two_customers(gateway: Any, client: Any) -> None:
    tokens = [await gateway.make_token("operator") for _ in range(2)]
    ids = []
    for token, long_key in [(t, k) for k in (False, True) for t in tokens]:
        # "1": keys are the client's own; 200 characters: scoped by a hash, still the client's own
        key = "k" * 200 if long_key else "1"
        headers = {**gateway.as_token(token), "Idempotency-Key": key}
        name = unique("mine")
        first = await client.post("/v1/customers", json={"name": name}, headers=headers)
        assert first.status_code == 201, first.text
        retry = await client.post("/v1/customers", json={"name": name}, headers=headers)
        assert retry.status_code == 201 and retry.json() == first.json()
        ids.append(first.json()["id"])
    assert len(set(ids)) == 4


async def test_duplicate_name_is_409_case_insensitively(client) -> None:
    name = unique("Dup")
    await create(client, name)
    reply = await client.post("/v1/customers", json={"name": name.upper()})
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "name_taken"


async def test_currency_change_and_bad_toml_are_422(client) -> None:
    card = await create(client, currency="USD")
    reply = await client.patch(f"/v1/customers/{card['id']}", json={"currency": "EUR"})
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "currency_immutable"
    bad = await client.post("/v1/customers", json={"name": unique(), "config_toml": "x = [1,"})
    assert bad.status_code == 422
    detail = bad.json()["error"]["details"][0]
    assert detail["field"] == "config_toml" and "TOML" in detail["message"]


async def test_unknown_and_deleted_customers_are_404_and_the_name_is_free_again(client) -> None:
    assert (await client.get(f"/v1/customers/{uuid.uuid4()}")).status_code == 404
    card = await create(client)
    url = f"/v1/customers/{card['id']}"
    assert (await client.delete(url, headers={"If-Match": "1"})).status_code == 204
    gone = await client.get(url)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "customer_deleted"
    await create(client, card["name"])


async def test_status_change_with_until_and_reason(client) -> None:
    card = await create(client)
    url = f"/v1/customers/{card['id']}/status"
    missing = await client.post(url, json={"status": "penalty"})
    assert missing.status_code == 422, missing.text
    reply = await client.post(url, json={"status": "penalty", "until": "2099-01-01T00:00:00Z",
                                         "reason": "late payment"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "penalty" and reply.json()["penalty_until"].startswith("2099-01-01")


async def test_board_filters_sorts_and_pages(client) -> None:
    tag = unique("tag")
    names = [f"{tag}-{i}" for i in range(5)]
    for i, name in enumerate(names):
        await create(client, name, tags=[tag], address={"country": "FR" if i % 2 else "DE"},
                     channels=i)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"tag": tag, "sort": "-name", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/customers", params=params)).json()
        assert page["total"] == 5 and len(page["items"]) <= 2
        seen += [c["name"] for c in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == sorted(names, reverse=True)
    french = (await client.get(f"/v1/customers?tag={tag}&country=fr,it")).json()
    assert sorted(c["name"] for c in french["items"]) == [names[1], names[3]]
    active = (await client.get("/v1/customers", params={"tag": tag, "status": "inactive"})).json()
    assert active["total"] == 0
    bad = await client.get("/v1/customers", params={"sort": "colour"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "sort"


async def test_board_csv_exports_every_matching_row(client) -> None:
    tag = unique("csv")
    for i in range(3):
        await create(client, f"{tag}, no. {i}", tags=[tag, "z"], address={"city": "Köln"},
                     verification={"mobile_required": True})
    reply = await client.get("/v1/customers", params={"tag": tag, "format": "csv", "limit": 1})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert sorted(r["name"] for r in rows) == [f"{tag}, no. {i}" for i in range(3)]
    assert {r["tags"] for r in rows} == {f"{tag};z"}
    assert {r["address.city"] for r in rows} == {"Köln"}
    assert {r["verification.mobile_required"] for r in rows} == {"true"}


async def test_roles_on_customers(gateway, client) -> None:
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    operator = gateway.as_token(await gateway.make_token("operator"))
    card = await create(client)
    assert (await client.get(f"/v1/customers/{card['id']}", headers=viewer)).status_code == 200
    assert (await client.get("/v1/customers", headers=viewer)).status_code == 200
    denied = await client.post("/v1/customers", json={"name": unique()}, headers=viewer)
    assert denied.status_code == 403
    assert (await client.patch(f"/v1/customers/{card['id']}", json={"channels": 1},
                               headers=viewer)).status_code == 403
    made = await client.post("/v1/customers", json={"name": unique()}, headers=operator)
    assert made.status_code == 201


async def test_reason_required_when_the_audit_setting_is_on(gateway, client) -> None:
    operator = gateway.as_token(await gateway.make_token("operator"))
    card = await create(client)
    url = f"/v1/customers/{card['id']}"
    assert (await client.put("/v1/settings/audit", json={"require_reason": True})).status_code == 200
    try:
        assert (await client.get("/v1/settings/audit", headers=operator)).json()["require_reason"] is True
        refused = await client.patch(url, json={"channels": 2}, headers=operator)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "reason_required"
        with_reason = await client.patch(url, json={"channels": 2},
                                         headers=operator | {"X-Audit-Reason": "ticket 42"})
        assert with_reason.status_code == 200, with_reason.text
        status = await client.post(f"{url}/status", json={"status": "inactive", "reason": "asked"},
                                   headers=operator)
        assert status.status_code == 200, status.text
    finally:
        await client.put("/v1/settings/audit", json={"require_reason": False},
                         headers={"X-Audit-Reason": "test over"})
