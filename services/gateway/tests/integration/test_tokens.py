"""Tokens: authentication, roles on token routes, creation, listing, revocation, start-up tokens."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
import structlog
from gateway.auth.roles import Role
from gateway.bootstrap import start
from gateway.settings import GatewaySettings
from pydantic import SecretStr, ValidationError

pytestmark = pytest.mark.servers
ONE = "pb_one_" + "1" * 40
TWO = "pb_two_" + "2" * 40


async def test_missing_or_invalid_token_is_401_with_challenge(gateway) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        reply = await gateway.client.get("/v1/tokens", headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"]["code"] == "unauthenticated"
        assert reply.headers["WWW-Authenticate"] == "Bearer"


async def test_created_token_is_shown_once_and_stored_as_hash_only(gateway) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    reply = await gateway.client.post("/v1/tokens", json={"name": name, "role": "operator"})
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert set(created) == {"id", "name", "role", "token", "expires_at"} and created["expires_at"] is None
    assert created["token"].startswith("pb_") and len(created["token"]) > 40
    assert reply.headers["Location"] == f"/v1/tokens/{created['id']}"

    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        stored = await conn.fetchrow("SELECT * FROM gateway.tokens WHERE id = $1", uuid.UUID(created["id"]))
    finally:
        await conn.close()
    assert stored["token_hash"] == hashlib.sha256(created["token"].encode()).hexdigest()
    assert created["token"] not in [str(v) for v in stored.values()]

    listed = (await gateway.client.get("/v1/tokens", params={"limit": 1000})).json()
    mine = [t for t in listed["items"] if t["id"] == created["id"]]
    assert mine and "token" not in mine[0] and "token_hash" not in mine[0]
    assert mine[0]["role"] == "operator"


async def test_duplicate_active_name_is_409_but_free_again_after_revoke(gateway) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    first = await gateway.client.post("/v1/tokens", json={"name": name, "role": "viewer"})
    assert first.status_code == 201
    again = await gateway.client.post("/v1/tokens", json={"name": name.upper(), "role": "viewer"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "name_taken"
    assert again.json()["error"]["details"][0]["field"] == "name"
    assert (await gateway.client.delete(f"/v1/tokens/{first.json()['id']}")).status_code == 204
    assert (await gateway.client.post("/v1/tokens", json={"name": name, "role": "viewer"})).status_code == 201


async def test_revoked_token_gets_401_at_once(gateway) -> None:
    created = await gateway.create_token("viewer")
    headers = gateway.as_token(created["token"])
    # this call puts the token in the lookup cache (then fails on role); revocation must clear it
    assert (await gateway.client.get("/v1/tokens", headers=headers)).status_code == 403
    assert (await gateway.client.delete(f"/v1/tokens/{created['id']}")).status_code == 204
    reply = await gateway.client.get("/v1/tokens", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["error"]["message"] == "the token is invalid or revoked"
    assert (await gateway.client.delete(f"/v1/tokens/{created['id']}")).status_code == 404
    listed = (await gateway.client.get("/v1/tokens", params={"include_revoked": "true", "limit": 1000})).json()
    assert any(t["id"] == created["id"] and t["revoked_at"] for t in listed["items"])


@pytest.mark.parametrize("role", ["viewer", "operator", "billing"])
async def test_only_admin_manages_tokens(gateway, role: str) -> None:
    headers = gateway.as_token(await gateway.make_token(role))
    for method, path, body in (("GET", "/v1/tokens", None),
                               ("POST", "/v1/tokens", {"name": "x", "role": "admin"}),
                               ("DELETE", f"/v1/tokens/{uuid.uuid4()}", None)):
        reply = await gateway.client.request(method, path, json=body, headers=headers)
        assert reply.status_code == 403, (method, reply.text)
        assert reply.json()["error"]["code"] == "forbidden"


async def test_token_list_pages_with_cursor(gateway) -> None:
    for _ in range(3):
        await gateway.make_token("billing")
    seen: list[str] = []
    cursor = None
    total = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await gateway.client.get("/v1/tokens", params=params)).json()
        assert len(page["items"]) <= 2
        total = page["total"]
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total >= 4


async def test_bad_role_and_name_are_422_naming_the_field(gateway) -> None:
    reply = await gateway.client.post("/v1/tokens", json={"name": " ", "role": "root"})
    assert reply.status_code == 422
    fields = {d["field"] for d in reply.json()["error"]["details"]}
    assert fields == {"name", "role"}


async def test_admin_token_from_settings_is_upserted_by_name(
    make_database: Callable[[], Awaitable[str]], nats_url: str
) -> None:
    url = await make_database()
    first = GatewaySettings(nats_url=nats_url, database_url=url, admin_token=SecretStr(ONE))
    runtime = await start(first)
    assert await runtime.tokens.authenticate(ONE) is not None
    await runtime.stop()
    runtime = await start(first.model_copy(update={"admin_token": SecretStr(TWO)}))
    try:
        assert await runtime.tokens.authenticate(ONE) is None
        principal = await runtime.tokens.authenticate(TWO)
        assert principal is not None and principal.name == "admin" and principal.role == "admin"
        _, _, total = await runtime.tokens.list(limit=10, after=None, include_revoked=True)
        assert total == 1
    finally:
        await runtime.stop()


async def test_first_token_is_made_and_printed_once_without_settings(
    make_database: Callable[[], Awaitable[str]], nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = GatewaySettings(nats_url=nats_url, database_url=await make_database(), admin_token=None)
    runtime = await start(settings)
    await runtime.stop()
    shown = [line for line in capsys.readouterr().out.splitlines() if "shown once" in line]
    assert len(shown) == 1
    token = shown[0].rsplit(" ", 1)[-1]
    assert token.startswith("pb_")
    runtime = await start(settings)
    try:
        assert "shown once" not in capsys.readouterr().out
        principal = await runtime.tokens.authenticate(token)
        assert principal is not None and principal.role == "admin"
    finally:
        await runtime.stop()


async def test_a_revoked_admin_token_is_not_brought_back_at_restart(
    make_database: Callable[[], Awaitable[str]], nats_url: str
) -> None:
    settings = GatewaySettings(nats_url=nats_url, database_url=await make_database(), admin_token=SecretStr(ONE))
    runtime = await start(settings)
    principal = await runtime.tokens.authenticate(ONE)
    assert principal is not None
    await runtime.tokens.create(name="ops", role=Role.ADMIN)  # someone is left to manage tokens
    await runtime.tokens.revoke(principal.token_id)
    await runtime.stop()
    with structlog.testing.capture_logs() as logs:
        runtime = await start(settings)  # PATCHBAY_ADMIN_TOKEN still says ONE
    try:
        assert await runtime.tokens.authenticate(ONE) is None
        assert any(e["event"] == "admin_token_revoked_not_restored" for e in logs), logs
    finally:
        await runtime.stop()


def test_an_admin_token_shorter_than_32_characters_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        GatewaySettings(admin_token="pb_short_but_not_blank")
    assert GatewaySettings(admin_token="   ").admin_token is None  # blank is unset, as before
    assert GatewaySettings(admin_token=ONE).admin_token is not None
