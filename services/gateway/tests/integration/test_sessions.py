"""Sessions that end: console logout revokes server-side, portal logout revokes the portal token,
API tokens may expire (issue 14). A fake customer service answers the portal's questions."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from shared import bus

pytestmark = pytest.mark.servers
VIEW = {"contact": {"id": str(uuid.uuid4())}, "customer": {"id": str(uuid.uuid4())}}


def hidden(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form, f"no form posts to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customers(gateway: Any) -> AsyncIterator[None]:
    async def answer(msg: Msg) -> None:
        await msg.respond(json.dumps(VIEW).encode())

    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    subs = [await nc.subscribe(s, cb=answer)
            for s in ("customer.query.portal.login", "customer.query.portal.session")]
    await nc.flush()
    yield
    for sub in subs:
        await sub.unsubscribe()
    await nc.drain()


def browser(gateway: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="https://gateway.test")  # cookies are Secure


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    page = await client.get("/console/login")
    csrf = hidden(page.text, "/console/login")["csrf_token"]
    reply = await client.post("/console/login", data={"token": token, "csrf_token": csrf, "next": "/console/"})
    assert reply.status_code == 303, reply.text


async def test_console_logout_ends_the_session_on_the_server(gateway: Any) -> None:
    token = await gateway.make_token("operator")
    async with browser(gateway) as client:
        await sign_in(client, token)
        cookie = client.cookies["pb_console"]
        assert token not in cookie  # sealed, and not the operator's own token anyway
        home = await client.get("/console/")
        assert home.status_code == 200
        out = await client.post("/console/logout", data=hidden(home.text, "/console/logout"))
        assert out.status_code == 303
    async with browser(gateway) as replay:  # someone kept the cookie
        replay.cookies.set("pb_console", cookie, domain="gateway.test")
        again = await replay.get("/console/")
        assert again.status_code == 303 and "/console/login" in again.headers["location"]
    # the operator's own token still works, and sessions are not listed as tokens
    assert (await gateway.client.get("/v1/customers", headers=gateway.as_token(token))).status_code != 401
    listed = (await gateway.client.get("/v1/tokens", params={"include_revoked": "true", "limit": 1000})).json()
    assert not [t for t in listed["items"] if t["name"].startswith("session:")]


async def test_revoking_a_token_ends_its_console_sessions(gateway: Any) -> None:
    made = await gateway.create_token("viewer")
    async with browser(gateway) as client:
        await sign_in(client, made["token"])
        assert (await client.get("/console/")).status_code == 200
        assert (await gateway.client.delete(f"/v1/tokens/{made['id']}")).status_code == 204
        gone = await client.get("/console/")
        assert gone.status_code == 303 and "/console/login" in gone.headers["location"]


async def test_portal_logout_revokes_the_portal_token(gateway: Any, customers: None) -> None:
    anon = {"Authorization": ""}
    login = await gateway.client.post("/portal/v1/login", json={"email": "a@example.com", "password": "x"},
                                      headers=anon)
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await gateway.client.get("/portal/v1/me", headers=bearer)).status_code == 200
    assert (await gateway.client.post("/portal/v1/logout", headers=bearer)).status_code == 204
    after = await gateway.client.get("/portal/v1/me", headers=bearer)
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthenticated"


async def test_api_tokens_may_expire(gateway: Any) -> None:
    soon = await gateway.client.post("/v1/tokens", json={"name": f"t-{uuid.uuid4().hex[:6]}", "role": "viewer",
                                                         "expires_in_days": 30})
    assert soon.status_code == 201, soon.text
    expires = datetime.fromisoformat(soon.json()["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    past = await gateway.client.post("/v1/tokens", json={"name": "p", "role": "viewer",
                                                         "expires_at": "2020-01-01T00:00:00Z"})
    both = await gateway.client.post("/v1/tokens", json={"name": "b", "role": "viewer", "expires_in_days": 1,
                                                         "expires_at": "2999-01-01T00:00:00Z"})
    assert past.status_code == both.status_code == 422
    # a token whose moment has come answers 401 (moved into the past in the database)
    runtime = gateway.app.state.runtime
    await runtime.pool.execute("UPDATE gateway.tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
                               uuid.UUID(soon.json()["id"]))
    reply = await gateway.client.get("/v1/customers", headers=gateway.as_token(soon.json()["token"]))
    assert reply.status_code == 401
    listed = (await gateway.client.get("/v1/tokens", params={"limit": 1000})).json()["items"]
    assert [t["expires_at"] for t in listed if t["id"] == soon.json()["id"]] != [None]


async def test_ended_console_sessions_are_swept(gateway: Any) -> None:
    tokens = gateway.app.state.runtime.tokens
    owner = await tokens.authenticate(gateway.admin_token)
    old = await tokens.open_session(owner, datetime.now(UTC) + timedelta(hours=1))
    pool = gateway.app.state.runtime.pool
    await pool.execute("UPDATE gateway.tokens SET expires_at = now() - interval '2 days'"
                       " WHERE token_hash = encode(sha256($1::bytea), 'hex')", old.encode())
    await tokens.open_session(owner, datetime.now(UTC) + timedelta(hours=1))
    left = await pool.fetchval("SELECT count(*) FROM gateway.tokens WHERE token_hash = encode(sha256($1::bytea), 'hex')",
                               old.encode())
    assert left == 0
