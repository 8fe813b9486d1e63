"""A slow link between the customer service and NATS or PostgreSQL, cut mid-stream under load.

The service reaches the server through `FaultyLink` (latency both ways); the test cuts every
open connection while commands and outbox batches are in flight. Nothing acknowledged is
lost, nothing is applied twice, and the service recovers by itself (never restarted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from .load import CommandLoad
from .processes import Servers, ServiceProcess, service_env
from .proxy import FaultyLink
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]
CUTS = 3


async def link_to(url: str, delay_s: float) -> FaultyLink:
    """A proxy in front of the server of `url`."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return await FaultyLink(parts.hostname, parts.port, delay_s=delay_s).start()


@pytest_asyncio.fixture(loop_scope="session")
async def links(servers: Servers) -> AsyncIterator[dict[str, FaultyLink]]:
    """One proxy to NATS and one to PostgreSQL, with a little latency each."""
    made = {"nats": await link_to(servers.nats_url, 0.01), "postgres": await link_to(servers.database_url, 0.002)}
    yield made
    for link in made.values():
        await link.close()


async def customer_through(servers: Servers, links: dict[str, FaultyLink], through: str,
                           log: Path) -> ServiceProcess:
    """The customer service with its `through` server behind the proxy, ready."""
    env = service_env(servers)
    key = {"nats": "PATCHBAY_NATS_URL", "postgres": "PATCHBAY_DATABASE_URL"}[through]
    env[key] = links[through].url(env[key])
    proc = ServiceProcess("customer", env, log)
    proc.start()
    await asyncio.to_thread(proc.wait_ready)  # in a thread: the proxy runs on this loop
    return proc


async def cut_under_load(link: FaultyLink, load: CommandLoad, proc: ServiceProcess) -> int:
    """Cut every connection CUTS times, each after 100 more commands acknowledged; how many were cut."""
    cut = 0
    load.start()
    try:
        await load.wait_acked(100)
        for _ in range(CUTS):
            cut += link.cut()
            await load.wait_acked(100)
    finally:
        await load.stop()
    load.assert_survived()
    assert proc.starts == 1 and proc.proc is not None and proc.proc.poll() is None, proc.tail()
    assert await asyncio.to_thread(proc.ready), "not ready after the cuts:\n" + proc.tail()
    return cut


@pytest.mark.parametrize("through", ["nats", "postgres"])
async def test_a_slow_link_cut_mid_batch(servers: Servers, links: dict[str, FaultyLink], client: NatsClient,
                                         embedded_tmp_path: Path, through: str) -> None:
    link = links[through]
    proc = await customer_through(servers, links, through, embedded_tmp_path / "customer.log")
    load = CommandLoad(client, clients=16)
    try:
        cut = await cut_under_load(link, load, proc)
        assert cut >= CUTS and link.connections > cut, (cut, link.connections)  # it reconnected each time
        # the relay, still behind the link, publishes the rest: each event once
        await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    finally:
        await asyncio.to_thread(proc.stop)
        print(f"--- customer log ---\n{proc.tail(60)}")
