"""Fault tests: real servers and service processes, owned by each test, killed on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from shared.settings import nats_servers

from shared import bus

from .processes import Servers, ServiceProcess, running_servers, running_service, service_env


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    """A durable PostgreSQL and a single nats-server (sync_interval: always) for this test."""
    with running_servers(embedded_tmp_path) as running:
        yield running


@pytest.fixture
def customer(servers: Servers, embedded_tmp_path: Path) -> Iterator[ServiceProcess]:
    """The customer service as a process, ready."""
    with running_service("customer", service_env(servers), embedded_tmp_path / "customer.log") as proc:
        yield proc


@pytest_asyncio.fixture(loop_scope="session")
async def client(servers: Servers) -> AsyncIterator[NatsClient]:
    """The load's NATS connection: reconnects forever, like a real client."""
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner", max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2)
    try:
        yield nc
    finally:
        await nc.close()
