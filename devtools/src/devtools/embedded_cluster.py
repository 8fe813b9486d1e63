"""A NATS JetStream cluster of real nats-servers on loopback, each node its own store dir.

Each node is an `EmbeddedNats` with a `cluster {}` block naming every other node's route
port. JetStream runs domain-less; streams declared with `num_replicas=3` are spread over
the three nodes (RAFT), so one node can die without losing an acknowledged message.
Clients take the comma-separated `url` (see `shared.settings.nats_servers`).
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import structlog

from devtools.embedded import (
    EmbeddedNats,
    PortInUse,
    free_port,
    port_is_free,
    retry_taken_ports,
    stop_stale_nats,
)

log = structlog.get_logger()

CLUSTER_NAME = "patchbay"


class EmbeddedNatsCluster:
    """`size` nats-servers forming one JetStream cluster; nodes can be killed and restarted."""

    def __init__(self, base_dir: Path, *, size: int = 3, host: str = "127.0.0.1",
                 ports: list[int] | None = None, sync_always: bool = False,
                 die_with_parent: bool = True, credentials_dir: Path | None = None,
                 provision_replicas: int | None = -1) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = base_dir.resolve()
        self.size = size
        self.host = host
        self.sync_always = sync_always
        self.die_with_parent = die_with_parent
        self._wanted_ports = ports or []
        self.credentials_dir = credentials_dir
        # streams made by the provisioner once every node is up (-1: min(3, size); None: not here)
        self.provision_replicas = min(3, size) if provision_replicas == -1 else provision_replicas
        self.nodes: list[EmbeddedNats] = []
        self.route_ports: list[int] = []
        self.monitor_ports: list[int] = []

    def node_dir(self, index: int) -> Path:
        """The store dir of node index (0-based): `<base>/n1`, `<base>/n2`, ..."""
        return self.base_dir / f"n{index + 1}"

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node (valid once started)."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """`nats://a,nats://b,nats://c`: what PATCHBAY_NATS_URL takes."""
        return ",".join(self.urls)

    def _pick_ports(self) -> list[int]:
        taken: set[int] = set()

        def pick(wanted: int | None) -> int:
            port = wanted if wanted and port_is_free(wanted, self.host) and wanted not in taken else 0
            while not port or port in taken:
                port = free_port(self.host)
            taken.add(port)
            return port

        clients = [pick(self._wanted_ports[i] if i < len(self._wanted_ports) else None)
                   for i in range(self.size)]
        self.route_ports = [pick(None) for _ in range(self.size)]
        self.monitor_ports = [pick(None) for _ in range(self.size)]
        return clients

    def _cluster_block(self, index: int) -> str:
        routes = ", ".join(f"nats-route://{self.host}:{p}" for i, p in enumerate(self.route_ports)
                           if i != index)
        return (f'http: "{self.host}:{self.monitor_ports[index]}"\n'
                f"cluster {{\n  name: {CLUSTER_NAME}\n"
                f'  listen: "{self.host}:{self.route_ports[index]}"\n'
                f"  routes: [{routes}]\n}}\n")

    def start(self, timeout: float = 30.0) -> str:
        """Start every node, wait until JetStream has a meta leader; return the URL list.

        The first start chooses every port (client, route, monitor) and, when another process
        takes one before its node binds it, stops the nodes and chooses them all again
        (PORT_ATTEMPTS); a restart keeps the ports its clients know.
        """
        if self.nodes:
            self._start_nodes(timeout)
        else:
            for i in range(self.size):  # first, so that a stale node does not hold our ports
                stop_stale_nats(self.node_dir(i))
            retry_taken_ports(lambda: self._start_fresh(timeout), "nats cluster")
        log.info("embedded nats cluster started", url=self.url)
        return self.url

    def _start_fresh(self, timeout: float) -> None:
        """Choose the ports, make the nodes and start them (forgotten again if a port was taken)."""
        clients = self._pick_ports()
        self.nodes = [
            EmbeddedNats(self.node_dir(i), port=clients[i], host=self.host,
                         sync_always=self.sync_always, die_with_parent=self.die_with_parent,
                         server_name=f"{CLUSTER_NAME}-n{i + 1}", extra_config=self._cluster_block(i),
                         credentials_dir=self.credentials_dir, provision_replicas=None)
            for i in range(self.size)
        ]
        try:
            self._start_nodes(timeout)
        except PortInUse:
            self.nodes = []
            raise

    def _start_nodes(self, timeout: float) -> None:
        """Start every node not running, wait for health, provision; stop all on failure."""
        try:
            for node in self.nodes:
                if node.pid is None:
                    node.start(timeout)
            self.wait_healthy(timeout=timeout, all_nodes=True)
            if self.provision_replicas is not None:
                self.nodes[0].provision(self.provision_replicas)
        except BaseException:
            self.stop()
            raise

    def healthy(self, index: int) -> bool:
        """True when node index says JetStream is healthy (meta leader known, assets current)."""
        url = f"http://{self.host}:{self.monitor_ports[index]}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return int(reply.status) == 200
        except OSError:
            return False

    def wait_healthy(self, *, timeout: float = 30.0, all_nodes: bool = False) -> None:
        """Wait until every running node reports JetStream healthy (all_nodes: raise if one exited)."""
        deadline = time.monotonic() + timeout
        while True:
            if all_nodes:
                for node in self.nodes:
                    node.check_running()
            running = [i for i, node in enumerate(self.nodes) if node.pid is not None]
            if running and all(self.healthy(i) for i in running):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats cluster not healthy after {timeout} s (running: {running})")
            time.sleep(0.1)

    def kill(self, index: int) -> None:
        """SIGKILL one node (a crash)."""
        self.nodes[index].kill()
        log.info("nats node killed", node=index + 1)

    def restart(self, index: int, timeout: float = 30.0) -> None:
        """Start a stopped or killed node again on its ports and store; wait for health."""
        self.nodes[index].start(timeout)
        self.wait_healthy(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop(timeout)
