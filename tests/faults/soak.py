"""The long soak, outside the suite: `make soak` (PATCHBAY_SOAK_MINUTES, default 10).

A 3-node NATS cluster, two replicas of the customer service and 32 clients under load; every
few seconds a random fault: kill -9 of a replica (restarted), kill -9 of a NATS node
(restarted), PostgreSQL restarted, NATS node stopped politely. At the end every acknowledged
command's events exist exactly once in PostgreSQL and JetStream.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.embedded_cluster import EmbeddedNatsCluster
from shared.settings import nats_servers

from shared import bus

from .load import CommandLoad
from .processes import Servers, ServiceProcess, running_servers, service_env
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults, pytest.mark.soak]

MINUTES = float(os.environ.get("PATCHBAY_SOAK_MINUTES", "10"))


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    with running_servers(embedded_tmp_path, cluster=3) as running:
        yield running


@pytest.mark.timeout(int(MINUTES * 60) + 600)
async def test_soak_random_faults_under_load(servers: Servers, embedded_tmp_path: Path) -> None:
    cluster = servers.nats
    assert isinstance(cluster, EmbeddedNatsCluster)
    env = service_env(servers, PATCHBAY_STREAM_REPLICAS="3")
    replicas = [ServiceProcess("customer", env, embedded_tmp_path / f"customer-{i}.log") for i in range(2)]
    for replica in replicas:
        replica.start()
    rng = random.Random(int(os.environ.get("PATCHBAY_SOAK_SEED", "1")))
    faults: Counter[str] = Counter()
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner", max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2)
    try:
        for replica in replicas:
            await asyncio.to_thread(replica.wait_ready)
        load = CommandLoad(nc, clients=32)
        load.start()
        deadline = time.monotonic() + MINUTES * 60
        while time.monotonic() < deadline:
            await load.wait_acked(200, timeout=120)
            fault = rng.choice(["kill_replica", "kill_nats_node", "stop_nats_node", "restart_postgres"])
            faults[fault] += 1
            if fault == "kill_replica":
                victim = rng.choice(replicas)
                victim.kill()
                await asyncio.sleep(rng.uniform(0.1, 2))
                victim.start()
                await asyncio.to_thread(victim.wait_ready)
            elif fault in ("kill_nats_node", "stop_nats_node"):
                node = rng.randrange(3)
                if fault == "kill_nats_node":
                    cluster.kill(node)
                else:
                    await asyncio.to_thread(cluster.nodes[node].stop)
                await asyncio.sleep(rng.uniform(0.5, 5))
                await asyncio.to_thread(cluster.restart, node)
            else:
                await asyncio.to_thread(servers.postgres.stop)
                await asyncio.sleep(rng.uniform(0.5, 3))
                await asyncio.to_thread(servers.postgres.start)
        await load.stop()
        print(f"faults {dict(faults)}")
        load.assert_survived(retried=False)
        await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    finally:
        await nc.close()
        for replica in replicas:
            replica.stop()
