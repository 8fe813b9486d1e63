"""The embedded 3-node JetStream cluster, alone and as `python -m devtools.stack servers` starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
from devtools.embedded_cluster import EmbeddedNatsCluster
from devtools.testing.waiting import wait_for
from nats.js.api import StreamConfig
from shared.settings import nats_servers

from shared import bus

pytestmark = pytest.mark.servers


def _nodes_under(base: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "nats-server" and any(str(base) in a for a in proc.info["cmdline"] or []):
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def test_nats_servers_splits_a_url_list() -> None:
    assert nats_servers("nats://a:1, nats://b:2,") == ["nats://a:1", "nats://b:2"]
    assert nats_servers("nats://a:1") == ["nats://a:1"]


async def test_replicated_stream_survives_a_killed_node(embedded_tmp_path: Path) -> None:
    cluster = EmbeddedNatsCluster(embedded_tmp_path / "c", size=3)
    url = cluster.start()
    try:
        assert len(nats_servers(url)) == 3
        assert [p.name for p in sorted((embedded_tmp_path / "c").iterdir())] == ["n1", "n2", "n3"]
        nc = await bus.connect(nats_servers(url), "provisioner", max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        js = nc.jetstream(timeout=2)
        name = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], num_replicas=3))
        for i in range(50):
            await js.publish(f"{name}.x", str(i).encode())
        cluster.kill(0)
        cluster.kill(0)  # killing a dead node is harmless

        async def published() -> bool:
            try:
                await js.publish(f"{name}.x", b"after")
                return True
            except Exception:
                return False

        await wait_for(published, timeout=20, message="a publish with one node down")
        info = await js.stream_info(name)
        assert info.state.messages == 51
        cluster.restart(0)
        assert all(cluster.healthy(i) for i in range(3))
        await nc.close()
    finally:
        cluster.stop()
    assert not _nodes_under(embedded_tmp_path)


def test_stack_servers_with_a_cluster(embedded_tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    env |= {"PATCHBAY_DATA_DIR": str(embedded_tmp_path / "data"), "PATCHBAY_NATS_CLUSTER": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "devtools.stack", "servers"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:  # log lines first; the runner exits if the servers fail
            if line.startswith("PATCHBAY_NATS_URL="):
                break
        assert line.startswith("PATCHBAY_NATS_URL="), line
        assert len(nats_servers(line.split("=", 1)[1].strip())) == 3
        assert len(_nodes_under(embedded_tmp_path / "data" / "nats-cluster")) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    assert not _nodes_under(embedded_tmp_path)
