"""kill -9 of PostgreSQL, and of a single nats-server (JetStream file store), under command load.

Nothing acknowledged is lost, nothing is applied twice, and the customer service recovers by
itself (never restarted): clients retry with their idempotency keys until answered.
"""

from __future__ import annotations

import asyncio

import pytest
from devtools.embedded import EmbeddedNats
from nats.aio.client import Client as NatsClient

from .load import CommandLoad
from .processes import Servers, ServiceProcess
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]


def _recovered_by_itself(customer: ServiceProcess) -> None:
    assert customer.starts == 1 and customer.proc is not None and customer.proc.poll() is None, (
        "the service had to be restarted:\n" + customer.tail())
    assert customer.ready(), customer.tail()


async def test_postgres_killed_9_under_load(servers: Servers, customer: ServiceProcess,
                                            client: NatsClient) -> None:
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(200)
        await asyncio.to_thread(servers.postgres.kill)  # the postmaster; its backends follow
        await asyncio.to_thread(servers.postgres.start)  # crash recovery from the WAL
        await load.wait_acked(200)
    finally:
        await load.stop()
    load.assert_survived()  # the kills forced retries, and every command was answered
    _recovered_by_itself(customer)
    checked = await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    assert checked >= len(load.acked)


async def test_single_nats_server_killed_9_under_load(servers: Servers, customer: ServiceProcess,
                                                      client: NatsClient) -> None:
    nats = servers.nats
    assert isinstance(nats, EmbeddedNats)
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(200)
        await asyncio.to_thread(nats.kill)  # no flush, no goodbye: the file store as it was
        await asyncio.to_thread(nats.start)  # same port, same store
        await load.wait_acked(200)
    finally:
        await load.stop()
    # no retry is guaranteed here: nats-py keeps what it had not sent and both sides resubscribe,
    # so a request in flight may still get its answer after the restart
    load.assert_survived(retried=False)
    _recovered_by_itself(customer)
    checked = await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    assert checked >= len(load.acked)
