"""NATS stopped for seconds and PostgreSQL restarted, under load: the service reconnects by itself."""

from __future__ import annotations

import asyncio

import pytest
from devtools.embedded import EmbeddedNats
from nats.aio.client import Client as NatsClient

from .load import CommandLoad
from .processes import Servers, ServiceProcess
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]


def _check(load: CommandLoad, customer: ServiceProcess) -> None:
    load.assert_survived(retried=False)
    assert customer.starts == 1 and customer.proc is not None and customer.proc.poll() is None, (
        "the service had to be restarted:\n" + customer.tail())


async def test_nats_stopped_for_seconds_under_load(servers: Servers, customer: ServiceProcess,
                                                   client: NatsClient) -> None:
    nats = servers.nats
    assert isinstance(nats, EmbeddedNats)
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(300)
        await asyncio.to_thread(nats.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(nats.start)  # same port, same store
        await load.wait_acked(500)
        assert customer.ready()
    finally:
        await load.stop()
    _check(load, customer)
    load.assert_survived()  # the restart forced retries
    await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())


async def test_postgres_restarted_under_load(servers: Servers, customer: ServiceProcess,
                                             client: NatsClient) -> None:
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(300)
        for _ in range(2):
            await asyncio.to_thread(servers.postgres.stop)
            await asyncio.sleep(1)
            await asyncio.to_thread(servers.postgres.start)
            await load.wait_acked(300)
        assert customer.ready()
    finally:
        await load.stop()
    _check(load, customer)
    await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
