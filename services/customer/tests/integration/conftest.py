"""A customer service per test module, in-process, on a fresh database and the session's NATS."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings, start
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient


async def call(nc: NatsClient, subject: str, payload: dict[str, Any], timeout: float = 5.0) -> Any:
    """One request; the JSON reply."""
    msg = await nc.request(subject, json.dumps(payload, default=str).encode(), timeout=timeout)
    return json.loads(msg.data)


async def create(nc: NatsClient, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """Create a customer with a random name unless given; return its card."""
    body = {"customer": {"name": name or f"cust-{uuid.uuid4().hex[:10]}", **fields}}
    card = await call(nc, "customer.cmd.create", body)
    assert "error" not in card, card
    return card  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    nats_url: str, make_database: Any
) -> AsyncIterator[CustomerService]:
    settings = CustomerSettings(
        nats_url=nats_url, database_url=await make_database(), penalty_sweep_interval_s=0.2,
        board_total_ttl_s=1.0
    )
    svc = await start(settings)
    yield svc
    await svc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def nc(service: CustomerService, nats: NatsClient) -> NatsClient:
    """A client that the service already answers (subscriptions known to the server)."""

    async def answers() -> bool:
        try:
            await nats.request("customer.query.settings.audit", b"{}", timeout=0.5)
            return True
        except Exception:
            return False

    await wait_for(answers, timeout=10, message="customer service never answered")
    return nats
