"""Start-up waits for JetStream's meta leader (bounded) instead of failing on `nats: timeout`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from devtools.embedded_cluster import EmbeddedNatsCluster
from nats.errors import TimeoutError as NatsTimeoutError
from shared.streams import ALL_STREAMS, ensure_streams

from shared import bus

pytestmark = pytest.mark.servers


async def test_ensure_streams_waits_for_a_meta_leader(embedded_tmp_path: Path) -> None:
    cluster = EmbeddedNatsCluster(embedded_tmp_path / "c", size=3)
    cluster.start()
    try:
        nc = await bus.connect(cluster.urls[0], "provisioner", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        try:
            js = nc.jetstream(timeout=1)
            await ensure_streams(js, replicas=3)
            for index in (1, 2):  # quorum lost: no meta leader, JetStream API requests time out
                await asyncio.to_thread(cluster.nodes[index].stop)
            with pytest.raises(NatsTimeoutError):  # without waiting: the failure services exited on
                await ensure_streams(js, replicas=3, budget_s=0)
            waiting = asyncio.create_task(ensure_streams(js, replicas=3, budget_s=60))
            await asyncio.sleep(2)
            assert not waiting.done(), "ensure_streams must wait while there is no meta leader"
            started = time.monotonic()
            await asyncio.to_thread(cluster.nodes[1].start)
            await asyncio.wait_for(waiting, 60)  # a leader again: the streams are ensured
            assert time.monotonic() - started < 30
            names = {info.config.name for info in await js.streams_info()}
            assert {spec.name for spec in ALL_STREAMS} <= names
        finally:
            await nc.close()
    finally:
        cluster.stop()
