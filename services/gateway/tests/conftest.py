"""Gateway test fixtures: the app in-process on real NATS and PostgreSQL, a fresh database per module."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.embedded import EmbeddedNats
from devtools.testing.waiting import wait_for
from fastapi import FastAPI
from gateway.bootstrap import create_app
from gateway.settings import GatewaySettings
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from reporting.bootstrap import start as start_reporting
from reporting.settings import ReportingSettings

from shared import bus

Reply = dict[str, Any] | Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class Gateway:
    """A running in-process gateway and an admin client for it."""

    app: FastAPI
    settings: GatewaySettings
    admin_token: str
    client: httpx.AsyncClient

    def as_token(self, token: str | None) -> dict[str, str]:
        """Authorization headers for a token (none for None)."""
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def create_token(self, role: str) -> dict[str, Any]:
        """Create a token of a role through the API; return the answer (id, name, role, token)."""
        reply = await self.client.post(
            "/v1/tokens", json={"name": f"{role}-{uuid.uuid4().hex[:8]}", "role": role},
            headers=self.as_token(self.admin_token),
        )
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    async def make_token(self, role: str) -> str:
        """Create a token of a role through the API; return its secret."""
        return str((await self.create_token(role))["token"])


@pytest.fixture(scope="module")
def admin_token() -> str:
    """A random admin secret per module, as PATCHBAY_ADMIN_TOKEN would give it."""
    return "pb_test_" + secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def module_nats_url(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of this module's own (embedded mode), so no other test's responder answers."""
    if os.environ.get("PATCHBAY_NATS_URL"):
        yield nats_url
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("module-nats"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway_settings(
    module_nats_url: str, make_database: Callable[[], Awaitable[str]], admin_token: str
) -> GatewaySettings:
    """Settings pointing at the module's NATS and a fresh database."""
    return GatewaySettings(
        nats_url=module_nats_url, database_url=await make_database(), admin_token=admin_token,
        request_timeout_s=2.0, max_body_bytes=200_000,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(gateway_settings: GatewaySettings, admin_token: str) -> AsyncIterator[Gateway]:
    """The app with its lifespan running, and an httpx client bound to it (no sockets)."""
    app = create_app(gateway_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            client.headers["Authorization"] = f"Bearer {admin_token}"
            yield Gateway(app, gateway_settings, admin_token, client)


@dataclass
class FakeService:
    """A responder on the real nats-server, standing in for a service: records and answers."""

    replies: dict[str, Reply] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def handle(self, msg: Msg) -> None:
        """Record the request; answer the programmed reply for its subject."""
        body = json.loads(msg.data) if msg.data else {}
        self.seen.append((msg.subject, dict(msg.headers or {}), body))
        reply = self.replies.get(msg.subject, {"ok": True})
        answer = reply(msg.subject, body) if callable(reply) else reply
        await msg.respond(json.dumps(answer).encode())

    def last(self, subject: str) -> tuple[dict[str, str], dict[str, Any]]:
        """Headers and body of the last request on a subject."""
        for seen_subject, headers, body in reversed(self.seen):
            if seen_subject == subject:
                return headers, body
        raise AssertionError(f"no request on {subject}; saw {[s for s, _, _ in self.seen]}")


@pytest_asyncio.fixture(loop_scope="session")
async def fake_customer(gateway: Gateway) -> AsyncIterator[FakeService]:
    """A fake customer service on `customer.>`, answering before the test starts."""
    fake = FakeService()
    nc: NatsClient = await bus.connect(gateway.settings.nats_url, "provisioner")
    sub = await nc.subscribe("customer.>", cb=fake.handle)
    probe: NatsClient = gateway.app.state.runtime.nc

    async def answers() -> bool:
        try:
            await probe.request("customer.query.settings.audit", b"{}", timeout=0.5)
            return True
        except Exception:
            return False

    await wait_for(answers, timeout=10, message="fake customer service never answered")
    fake.seen.clear()
    yield fake
    await sub.unsubscribe()
    await nc.drain()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def real_services(gateway: Any, module_nats_url: str, make_database: Any) -> AsyncIterator[None]:
    """The customer and reporting services on the gateway's NATS, each on a fresh database."""
    customer = await start_customer(CustomerSettings(nats_url=module_nats_url, database_url=await make_database()))
    reporting = await start_reporting(ReportingSettings(
        nats_url=module_nats_url, database_url=await make_database()))  # the table's durables (a server per module)

    async def answers() -> bool:
        return (await gateway.client.get("/v1/reporting/lag")).status_code == 200

    await wait_for(answers, timeout=20, message="the reporting service behind the gateway")
    yield
    await reporting.stop()
    try:
        await asyncio.wait_for(customer.stop(), 5)
    except TimeoutError:
        await customer.nc.close()
        customer.pool.terminate()
