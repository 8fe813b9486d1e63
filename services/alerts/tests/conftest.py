"""Alerts fixtures: the real customer service, notifier (with a local SMTP server) and alerts service."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from devtools.embedded import free_port
from shared.secrets import Sealer

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))  # alerts_testkit
sys.path.insert(0, str(Path(__file__).parents[2] / "notifier" / "tests"))  # its SMTP server kit

from alerts.bootstrap import AlertsService, AlertsSettings
from alerts.bootstrap import start as start_alerts
from customer.bootstrap import CustomerService, CustomerSettings
from customer.bootstrap import start as start_customer
from nats.aio.client import Client as NatsClient
from notifier.bootstrap import NotifierService, NotifierSettings
from notifier.bootstrap import start as start_notifier
from notifier_testkit import SmtpServer, use_smtp
from strangers import strangers_queued


@pytest.fixture(scope="module")
def secret_key() -> str:
    """A sealing key per module."""
    return Sealer.new_key()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on a free port."""
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customer_service(nats_url: str, make_database: Any, secret_key: str) -> AsyncIterator[CustomerService]:
    """The customer service in-process."""
    settings = CustomerSettings(nats_url=nats_url, database_url=await make_database(), secret_key=secret_key)
    svc = await start_customer(settings)
    yield svc
    await svc.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notifier(nats_url: str, make_database: Any, secret_key: str, tmp_path_factory: pytest.TempPathFactory,
                   smtp: SmtpServer) -> AsyncIterator[NotifierService]:
    """The notifier in-process, sending to the local SMTP server; other tests' leftovers queued (`strangers`)."""
    settings = NotifierSettings(
        nats_url=nats_url, database_url=await make_database(), secret_key=secret_key, retry_base_s=0.2,
        retry_max_s=1.0, idle_poll_s=0.1, recovery_interval_s=0.5,
        journal_dir=Path(tmp_path_factory.mktemp("journal")), allow_insecure_providers=True,
    )
    svc = await start_notifier(settings)
    await strangers_queued(nats_url)
    yield svc
    await svc.stop()


@pytest.fixture(scope="module")
def alerts_overrides() -> dict[str, Any]:
    """Settings a module wants different."""
    return {}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alerts_db(make_database: Any) -> str:
    """The alerts service's database (kept across its restarts within a module)."""
    url: str = await make_database()
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alerts(nats_url: str, alerts_db: str, alerts_overrides: dict[str, Any]) -> AsyncIterator[AlertsService]:
    """The alerts service in-process."""
    svc = await start_alerts(AlertsSettings(nats_url=nats_url, database_url=alerts_db, **alerts_overrides))
    yield svc
    await svc.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(nats_url: str, customer_service: CustomerService, notifier: NotifierService,
                alerts: AlertsService, smtp: SmtpServer) -> AsyncIterator[NatsClient]:
    """Customer service, notifier and alerts running; a client; e-mail going to the local server."""

    nc = await bus.connect(nats_url, "provisioner")
    await use_smtp(nc, smtp.port)
    yield nc
    await nc.drain()
