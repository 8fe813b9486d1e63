"""Errors that say what to do (issue 17): each names the field or header and the way out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.servers


@pytest.fixture
def client(gateway: Any, real_services: None) -> Any:
    """The admin client, once the services answer."""
    return gateway.client


def error_of(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    return dict(reply.json()["error"])


async def test_a_json_body_without_json_content_type_names_the_header(gateway: Any) -> None:
    for headers in ({"Content-Type": "text/plain"}, {}):
        reply = await gateway.client.post("/v1/customers", content=b'{"name": "x"}', headers=headers)
        error = error_of(reply, 422)
        assert error["details"][0]["field"] == "Content-Type"
        assert "application/json" in error["message"] and "valid dictionary" not in error["message"]


async def test_a_non_utf8_csv_names_the_bad_byte(gateway: Any) -> None:
    body = b"name,currency\n" + b"a" * 30 + b",EUR\n" + b"M\xfcller GmbH,EUR\n"
    at = body.index(b"\xfc")
    reply = await gateway.client.post("/v1/customers/bulk", content=body, headers={"Content-Type": "text/csv"})
    error = error_of(reply, 422)
    assert f"byte {at} " in error["message"] and "0xfc" in error["message"] and "UTF-8" in error["message"]
    # a bad byte in a later chunk is counted from the start of the body, not of its chunk
    big = b"name,currency\n" + b"x" * 70_000 + b"\xff,EUR\n"

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]

    reply = await gateway.client.post("/v1/customers/bulk", content=chunks(), headers={"Content-Type": "text/csv"})
    bad = big.index(b"\xff")
    assert f"byte {bad} " in error_of(reply, 422)["message"]


async def test_a_cross_field_rule_names_its_field_without_pydantics_prefix(gateway: Any) -> None:
    reply = await gateway.client.post("/v1/messages", json={
        "channel": "email", "body": "hi", "customer_ids": [str(uuid.uuid4())]})
    detail = error_of(reply, 422)["details"][0]
    assert detail == {"field": "subject", "message": "an e-mail needs a subject", "type": "value_error"}


async def test_a_penalty_without_until_names_until(client: Any) -> None:
    card = (await client.post("/v1/customers", json={"name": f"pen-{uuid.uuid4().hex[:8]}"})).json()
    error = error_of(await client.post(f"/v1/customers/{card['id']}/status", json={"status": "penalty"}), 422)
    assert error["details"][0]["field"] == "until" and "`until`" in error["message"]
    assert "penalty_until" not in error["message"]
    reply = await client.post("/v1/customers/bulk-update", json={"ids": [card["id"]], "set": {"status": "penalty"}})
    detail = error_of(reply, 422)["details"][0]
    assert detail["field"] == "set.until" and "future time" in detail["message"]
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reply = await client.post("/v1/customers/bulk-update", json={
        "ids": [card["id"]], "set": {"status": "active", "until": soon}})
    assert error_of(reply, 422)["details"][0]["field"] == "set.until"
    reply = await client.post("/v1/customers/bulk-update", json={
        "ids": [card["id"]], "set": {"status": "penalty", "until": soon}})
    assert reply.status_code == 200 and reply.json()["succeeded"] == 1, reply.text


async def test_a_portal_token_on_a_v1_route_is_told_where_it_belongs(gateway: Any) -> None:
    token, _ = gateway.app.state.runtime.portal.sessions.issue(str(uuid.uuid4()), str(uuid.uuid4()))
    reply = await gateway.client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    error = error_of(reply, 401)
    assert "portal session token" in error["message"] and "/portal/v1" in error["message"]
    reply = await gateway.client.get("/v1/customers", headers={"Authorization": "Bearer pb_nothing"})
    assert error_of(reply, 401)["message"] == "the token is invalid or revoked"


async def test_billing_reading_the_email_settings_is_told_what_is_refused(gateway: Any) -> None:
    billing = gateway.as_token(await gateway.make_token("billing"))
    message = error_of(await gateway.client.get("/v1/settings/email", headers=billing), 403)["message"]
    assert message == "role 'billing' may not read the e-mail and SMS settings (only admin)"


async def test_the_audit_log_of_an_unknown_customer_is_404(client: Any) -> None:
    error_of(await client.get(f"/v1/customers/{uuid.uuid4()}/audit"), 404)
    error_of(await client.get(f"/v1/customers/{uuid.uuid4()}/audit", params={"format": "csv"}), 404)
    card = (await client.post("/v1/customers", json={"name": f"aud-{uuid.uuid4().hex[:8]}"})).json()
    reply = await client.get(f"/v1/customers/{card['id']}/audit", params={"type": "Nothing"})
    assert reply.status_code == 200 and reply.json()["items"] == []


async def test_name_taken_names_the_field(client: Any) -> None:
    name = f"taken-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/v1/customers", json={"name": name})).status_code == 201
    error = error_of(await client.post("/v1/customers", json={"name": name.upper()}), 409)
    assert error["code"] == "name_taken"
    assert error["details"] == [{"field": "name", "type": "name_taken", "message": error["message"]}]
    assert "another customer already has this name" in error["message"]
