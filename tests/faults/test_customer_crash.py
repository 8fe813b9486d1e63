"""kill -9 of the customer service under load, then a restart: nothing acknowledged is lost or doubled."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NatsClient

from .load import CommandLoad
from .processes import Servers, ServiceProcess
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]


async def test_kill_9_mid_load_then_restart(servers: Servers, customer: ServiceProcess,
                                            client: NatsClient) -> None:
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(300)
        for _ in range(2):
            customer.kill()
            await asyncio.sleep(0.3)  # requests in flight time out; clients retry with the same keys
            customer.start()
            await asyncio.to_thread(customer.wait_ready)
            await load.wait_acked(300)
    finally:
        await load.stop()
    load.assert_survived()
    checked = await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    assert checked >= len(load.acked)
