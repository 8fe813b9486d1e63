"""HTTP to NATS mapping against a fake customer service on the real nats-server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from shared.contracts.customer import Subjects
from shared.errors import HTTP_STATUS

pytestmark = pytest.mark.servers


def card(**fields: Any) -> dict[str, Any]:
    """Enough of a card for the gateway (it passes the rest through)."""
    return {"id": str(uuid.uuid4()), "name": "Acme", "version": 3, **fields}


async def test_command_meta_comes_from_headers_and_token(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.CREATE] = card()
    token = await gateway.create_token("operator")
    reply = await gateway.client.post(
        "/v1/customers", json={"name": "Acme", "tags": ["b", "a"]},
        headers={"Authorization": f"Bearer {token['token']}", "Idempotency-Key": "key-1",
                 "X-Audit-Reason": " customer asked ", "X-Request-Id": "req-42"},
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["Location"] == f"/v1/customers/{reply.json()['id']}"
    assert reply.headers["ETag"] == '"3"'
    assert reply.headers["X-Correlation-Id"] == "req-42"
    headers, body = fake_customer.last(Subjects.CREATE)
    assert headers["X-Correlation-Id"] == "req-42"
    assert body["meta"] == {
        "command_id": f"{token['id']}:key-1", "reason": "customer asked", "correlation_id": "req-42",
        "actor": {"kind": "operator", "id": token["id"], "name": token["name"], "ip": "127.0.0.1"},
    }
    assert body["customer"] == {"name": "Acme", "tags": ["a", "b"]}  # only what was sent, validated


async def test_a_new_correlation_id_per_request_when_the_client_sends_none(gateway, fake_customer) -> None:
    ids = set()
    for _ in range(2):
        reply = await gateway.client.get(f"/v1/customers/{uuid.uuid4()}")
        headers, _ = fake_customer.last(Subjects.GET)
        assert headers["X-Correlation-Id"] == reply.headers["X-Correlation-Id"]
        ids.add(str(uuid.UUID(reply.headers["X-Correlation-Id"])))
    assert len(ids) == 2


@pytest.mark.parametrize("if_match", ["3", '"3"', 'W/"3"', ' "3" '])
async def test_patch_sends_only_present_fields_and_if_match(gateway, fake_customer, if_match: str) -> None:
    fake_customer.replies[Subjects.UPDATE] = card(version=4)
    customer_id = uuid.uuid4()
    reply = await gateway.client.patch(
        f"/v1/customers/{customer_id}", json={"channels": 5, "website": None, "tax": "7.50"},
        headers={"If-Match": if_match},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["ETag"] == '"4"'
    _, body = fake_customer.last(Subjects.UPDATE)
    assert body["customer_id"] == str(customer_id)
    assert body["expected_version"] == 3
    assert body["changes"] == {"channels": 5, "website": None, "tax": "7.5"}


async def test_patch_without_if_match_and_with_a_bad_one(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.UPDATE] = card()
    assert (await gateway.client.patch(f"/v1/customers/{uuid.uuid4()}", json={})).status_code == 200
    assert fake_customer.last(Subjects.UPDATE)[1]["expected_version"] is None
    reply = await gateway.client.patch(f"/v1/customers/{uuid.uuid4()}", json={}, headers={"If-Match": "v3"})
    assert reply.status_code == 422
    assert reply.json()["error"]["details"][0]["field"] == "If-Match"


async def test_status_reason_in_the_body_wins_over_the_header(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.SET_STATUS] = card(status="penalty")
    reply = await gateway.client.post(
        f"/v1/customers/{uuid.uuid4()}/status",
        json={"status": "penalty", "reason": "fraud check", "until": "2030-01-02T03:04:05Z"},
        headers={"X-Audit-Reason": "header reason"},
    )
    assert reply.status_code == 200, reply.text
    _, body = fake_customer.last(Subjects.SET_STATUS)
    assert body["meta"]["reason"] == "fraud check"
    assert body["status"] == "penalty" and body["until"].startswith("2030-01-02T03:04:05")


async def test_delete_is_204_and_carries_if_match(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.DELETE] = card(deleted=True)
    reply = await gateway.client.delete(f"/v1/customers/{uuid.uuid4()}", headers={"If-Match": "7"})
    assert reply.status_code == 204 and reply.content == b""
    assert fake_customer.last(Subjects.DELETE)[1]["expected_version"] == 7


@pytest.mark.parametrize("code", sorted(HTTP_STATUS))
async def test_service_error_codes_map_to_their_status(gateway, fake_customer, code: str) -> None:
    error = {"code": code, "message": f"it failed: {code}",
             "details": [{"field": "name", "message": "taken", "type": None}]}
    fake_customer.replies[Subjects.GET] = {"error": error}
    reply = await gateway.client.get(f"/v1/customers/{uuid.uuid4()}")
    assert reply.status_code == HTTP_STATUS[code]
    assert reply.json() == {"error": error}


async def test_a_card_mentioning_error_inside_is_not_an_error(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.GET] = card(config={"error": "not at top level"})
    reply = await gateway.client.get(f"/v1/customers/{uuid.uuid4()}")
    assert reply.status_code == 200 and reply.json()["config"] == {"error": "not at top level"}


async def test_viewer_reads_but_cannot_write_and_nothing_reaches_nats(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.GET] = card()
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    assert (await gateway.client.get(f"/v1/customers/{uuid.uuid4()}", headers=viewer)).status_code == 200
    fake_customer.seen.clear()
    for method, path, body in (
        ("POST", "/v1/customers", {"name": "x"}),
        ("PATCH", f"/v1/customers/{uuid.uuid4()}", {}),
        ("DELETE", f"/v1/customers/{uuid.uuid4()}", None),
        ("POST", f"/v1/customers/{uuid.uuid4()}/status", {"status": "active"}),
        ("PUT", "/v1/settings/audit", {"require_reason": True}),
    ):
        reply = await gateway.client.request(method, path, json=body, headers=viewer)
        assert reply.status_code == 403, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "forbidden"
    assert fake_customer.seen == []


async def test_operator_cannot_change_settings_admin_can(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.SET_AUDIT_SETTINGS] = {"require_reason": True, "version": 1}
    operator = gateway.as_token(await gateway.make_token("operator"))
    body = {"require_reason": True}
    assert (await gateway.client.put("/v1/settings/audit", json=body, headers=operator)).status_code == 403
    reply = await gateway.client.put("/v1/settings/audit", json=body)
    assert reply.status_code == 200 and reply.json() == {"require_reason": True, "version": 1}
    assert fake_customer.last(Subjects.SET_AUDIT_SETTINGS)[1]["require_reason"] is True


async def test_board_splits_repeated_and_comma_separated_filters(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.LIST] = {"items": [], "next_cursor": None, "total": 0}
    reply = await gateway.client.get(
        "/v1/customers?status=active,penalty&status=inactive&tag=vip&currency=eur&country=de,fr"
        "&sort=-created_at&limit=10&created_from=2024-01-01T00:00:00Z&q=acme"
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"items": [], "next_cursor": None, "total": 0}
    _, body = fake_customer.last(Subjects.LIST)
    assert body["status"] == ["active", "penalty", "inactive"]
    assert body["tag"] == ["vip"] and body["currency"] == ["EUR"] and body["country"] == ["DE", "FR"]
    assert body["sort"] == "-created_at" and body["limit"] == 10 and body["q"] == "acme"
    assert body["created_from"].startswith("2024-01-01T00:00:00")


async def test_board_rejects_bad_filters_naming_them(gateway, fake_customer) -> None:
    reply = await gateway.client.get("/v1/customers?status=sleeping&currency=XYZ1&limit=0")
    assert reply.status_code == 422
    fields = {d["field"] for d in reply.json()["error"]["details"]}
    assert fields == {"limit"}  # FastAPI checks the declared types first
    reply = await gateway.client.get("/v1/customers?status=sleeping&currency=XYZ1")
    assert reply.status_code == 422
    fields = {d["field"] for d in reply.json()["error"]["details"]}
    assert fields == {"status.0", "currency.0"}


async def test_csv_export_pages_through_every_row(gateway, fake_customer) -> None:
    pages = {
        None: {"items": [card(name="A, Inc.", tags=["x", "y"], address={"country": "DE"},
                              verification={"email_required": True})],
               "next_cursor": "c1", "total": 2},
        "c1": {"items": [card(name="B", notes='say "hi"\nbye')], "next_cursor": None, "total": 2},
    }
    fake_customer.replies[Subjects.LIST] = lambda _, body: pages[body["cursor"]]
    reply = await gateway.client.get("/v1/customers", params={"format": "csv", "limit": 1})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [r["name"] for r in rows] == ["A, Inc.", "B"]
    assert rows[0]["tags"] == "x;y" and rows[0]["address.country"] == "DE"
    assert rows[0]["verification.email_required"] == "true"
    assert rows[1]["notes"] == 'say "hi"\nbye'
    limits = [body["limit"] for subject, _, body in fake_customer.seen if subject == Subjects.LIST]
    assert limits == [1000, 1000]
    accept = await gateway.client.get("/v1/customers", headers={"Accept": "text/csv"})
    assert accept.text == reply.text


async def test_readyz_is_ready_when_everything_answers(gateway, fake_customer) -> None:
    reply = await gateway.client.get("/readyz", headers={"Authorization": ""})
    assert reply.status_code == 200
    assert reply.json()["checks"] == {"nats": "ok", "postgres": "ok", "customer": "ok"}
