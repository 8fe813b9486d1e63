"""A 3-node NATS cluster, streams with 3 replicas: one node killed under load, the stack goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from devtools.embedded_cluster import EmbeddedNatsCluster
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamInfo

from .load import CommandLoad
from .processes import Servers, ServiceProcess, running_servers, running_service, service_env
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    """PostgreSQL and a 3-node JetStream cluster."""
    with running_servers(embedded_tmp_path, cluster=3) as running:
        yield running


@pytest.fixture
def customer(servers: Servers, embedded_tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(servers, PATCHBAY_STREAM_REPLICAS="3")
    with running_service("customer", env, embedded_tmp_path / "customer.log") as proc:
        yield proc


async def _leader(client: NatsClient, stream: str) -> int:
    """Index (0-based) of the node leading stream (the JS API may be busy electing: retried)."""

    async def info() -> StreamInfo | None:
        try:
            return await client.jetstream(timeout=2).stream_info(stream)
        except Exception:
            return None

    found = await wait_for(info, timeout=30, message=f"{stream} info")
    assert found.config.num_replicas == 3 and found.cluster is not None
    assert len(found.cluster.replicas or []) == 2, found.cluster
    assert found.cluster.leader is not None
    return int(found.cluster.leader.rsplit("-n", 1)[1]) - 1


def _node_of(pid: int, cluster: EmbeddedNatsCluster) -> int:
    """Index of the node a process holds a client connection to."""
    ports = {node.port: i for i, node in enumerate(cluster.nodes)}
    held = {ports[c.raddr.port] for c in psutil.Process(pid).net_connections("tcp")
            if c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED}
    assert len(held) == 1, held
    return held.pop()


async def test_stream_leader_killed_under_load(servers: Servers, customer: ServiceProcess,
                                               client: NatsClient) -> None:
    cluster = servers.nats
    assert isinstance(cluster, EmbeddedNatsCluster)
    load = CommandLoad(client, clients=16)
    load.start()
    try:
        await load.wait_acked(300)
        victim = await _leader(client, "CUSTOMER_EVENTS")
        cluster.kill(victim)
        await load.wait_acked(500)  # on two nodes: a new leader, the relay and clients go on
        assert await _leader(client, "CUSTOMER_EVENTS") != victim
        await asyncio.to_thread(cluster.restart, victim)
        await load.wait_acked(300)
        # then the node the service itself is connected to: its connection moves to another
        assert customer.proc is not None
        victim = _node_of(customer.proc.pid, cluster)
        cluster.kill(victim)
        await load.wait_acked(500)
        assert _node_of(customer.proc.pid, cluster) != victim
        await asyncio.to_thread(cluster.restart, victim)  # whole again for the checks below
    finally:
        await load.stop()
    load.assert_survived(retried=False)
    assert customer.proc is not None and customer.proc.poll() is None, "the service died"
    await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
