"""A reporting service (and a customer service) per test module, in-process, on a nats-server of
the module's own and fresh databases, so streams hold only this module's traffic."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.embedded import EmbeddedNats
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from reporting.bootstrap import ReportingService
from reporting.bootstrap import start as start_reporting
from reporting.settings import ReportingSettings

from shared import bus

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def module_nats_url(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of this module's own (embedded mode): fresh streams, no stray responders."""
    if os.environ.get("PATCHBAY_NATS_URL"):
        yield nats_url
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("reporting-nats"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customer_service(module_nats_url: str, make_database: Any) -> AsyncIterator[CustomerService]:
    """The real customer service, producing real customer events."""
    svc = await start_customer(CustomerSettings(nats_url=module_nats_url, database_url=await make_database()))
    yield svc
    try:  # its NATS drain can wait 30 s for messages nobody reads after heavy traffic
        await asyncio.wait_for(svc.stop(), 5)
    except TimeoutError:
        await svc.nc.close()
        svc.pool.terminate()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reporting_settings(module_nats_url: str, make_database: Any) -> ReportingSettings:
    """Settings on a fresh database (durables of its own: the module has a nats-server of its own)."""
    return ReportingSettings(
        nats_url=module_nats_url, database_url=await make_database(), consumer_batch=500,
        live_call_max_age_s=4 * 3600,  # the table's durables (shared.bus_identities): a server per module
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reporting(
    reporting_settings: ReportingSettings, customer_service: CustomerService
) -> AsyncIterator[ReportingService]:
    """The reporting service under test."""
    svc = await start_reporting(reporting_settings)
    yield svc
    await svc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def nc(reporting: ReportingService, module_nats_url: str) -> AsyncIterator[NatsClient]:
    """A client that both services already answer."""
    client = await bus.connect(module_nats_url, "provisioner")

    async def answers() -> bool:
        try:
            await client.request("reporting.query.lag", b"{}", timeout=0.5)
            await client.request("customer.query.settings.audit", b"{}", timeout=0.5)
            return True
        except Exception:
            return False

    await wait_for(answers, timeout=10, message="services never answered")
    yield client
    await client.drain()


async def call(nc: NatsClient, subject: str, body: dict[str, Any], timeout: float = 5.0) -> Any:
    """One request; the JSON reply."""
    msg = await nc.request(subject, json.dumps(body, default=str).encode(), timeout=timeout)
    return json.loads(msg.data)


async def create_customer(nc: NatsClient, **fields: Any) -> dict[str, Any]:
    """Create a customer through the customer service; return its card."""
    body = {"meta": {"actor": {"kind": "operator", "id": "tok-1", "name": "alice", "ip": "192.0.2.7"}},
            "customer": {"name": f"cust-{uuid.uuid4().hex[:10]}", **fields}}
    card = await call(nc, "customer.cmd.create", body)
    assert "error" not in card, card
    return card  # type: ignore[no-any-return]


def cdr(customer_id: str, started_at: datetime, *, call_id: str | None = None,
        disposition: str = "answered", duration_s: int = 60, charge: str = "0.1000",
        cost: str = "0.0500", pdd_ms: int | None = 1500) -> dict[str, Any]:
    """A realistic call record."""
    answered = disposition == "answered"
    return {
        "call_id": call_id or uuid.uuid4().hex, "customer_id": customer_id,
        "started_at": started_at.isoformat(),
        "answered_at": (started_at + timedelta(seconds=2)).isoformat() if answered else None,
        "ended_at": (started_at + timedelta(seconds=2 + duration_s)).isoformat(),
        "cli": "+4930123456", "destination": "+4940987654",
        "duration_s": duration_s if answered else 0,
        "billed_duration_s": (duration_s + 59) // 60 * 60 if answered else 0,
        "charge": charge if answered else "0", "cost": cost if answered else "0",
        "disposition": disposition, "sip_code": 200 if answered else 486, "pdd_ms": pdd_ms,
    }


async def publish(js: JetStreamContext, subject: str, body: dict[str, Any], msg_id: str | None = None) -> None:
    """Publish to JetStream and wait for the ack."""
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    await js.publish(subject, json.dumps(body).encode(), headers=headers)


def money(value: Any) -> Decimal:
    """A decimal string of a reply as Decimal."""
    return Decimal(str(value))
