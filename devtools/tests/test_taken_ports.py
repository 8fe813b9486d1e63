"""A port taken between our free_port() choice and the server's bind: chosen again; a given one fails clearly."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from devtools.embedded import PORT_ATTEMPTS, EmbeddedNats, EmbeddedPostgres, PortInUse
from devtools.embedded_cluster import EmbeddedNatsCluster
from devtools.server_watch import Watched
from structlog.testing import capture_logs

from devtools import embedded, embedded_cluster, stack
from shared import bus

pytestmark = pytest.mark.servers


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test holds with a listening socket (as another xdist worker's server would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _chooser(held: int, *, at: set[int]) -> tuple[Callable[..., int], list[int]]:
    """A free_port whose calls numbered in `at` (1-based) answer the held port; also its answers."""
    real = embedded.free_port
    answers: list[int] = []

    def choose(host: str = "127.0.0.1") -> int:
        answers.append(held if len(answers) + 1 in at else real(host))
        return answers[-1]

    return choose, answers


def _retries(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "port taken before the server bound it; choosing another"]


async def test_nats_on_a_taken_chosen_port_starts_on_another(
        embedded_tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    choose, answers = _chooser(held_port, at={1})
    monkeypatch.setattr(embedded, "free_port", choose)
    server = EmbeddedNats(embedded_tmp_path / "nats")
    with capture_logs() as logs:
        url = server.start()
    try:
        assert answers[0] == held_port and server.port == answers[1] != held_port
        assert [(e["port"], e["attempt"], e["log_level"]) for e in _retries(logs)] == [(held_port, 1, "warning")]
        client = await bus.connect(url, "provisioner")
        js = client.jetstream()
        stream = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        assert (await js.publish(f"{stream}.a", b"hello")).seq == 1
        await client.close()
    finally:
        server.stop()


async def test_postgres_on_a_taken_chosen_port_starts_on_another(
        embedded_tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    choose, answers = _chooser(held_port, at={1})
    monkeypatch.setattr(embedded, "free_port", choose)
    server = EmbeddedPostgres(embedded_tmp_path / "pg", unsafe_fast=True)
    with capture_logs() as logs:
        url = server.start()
    try:
        assert answers[0] == held_port and server.port == answers[1] != held_port
        assert [e["port"] for e in _retries(logs)] == [held_port]
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT current_database()") == "patchbay"
        await conn.close()
    finally:
        server.stop()


def test_a_chosen_port_taken_every_time_gives_up_after_the_bounded_attempts(
        embedded_tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    choose, answers = _chooser(held_port, at=set(range(1, 10)))
    monkeypatch.setattr(embedded, "free_port", choose)
    server = EmbeddedNats(embedded_tmp_path / "nats")
    with pytest.raises(PortInUse, match=f"port {held_port} is already in use"):
        server.start()
    assert len(answers) == PORT_ATTEMPTS
    assert server.port is None and server.pid is None


@pytest.mark.parametrize("kind", ["nats", "postgres"])
def test_a_given_taken_port_fails_fast_and_says_which(embedded_tmp_path: Path, held_port: int, kind: str) -> None:
    server = (EmbeddedNats(embedded_tmp_path / "nats", port=held_port) if kind == "nats" else
              EmbeddedPostgres(embedded_tmp_path / "pg", port=held_port, unsafe_fast=True))
    started = time.monotonic()
    with pytest.raises(PortInUse) as caught:
        server.start()
    assert time.monotonic() - started < 10  # the server's exit, not a readiness timeout (10 s / 30 s)
    message = str(caught.value)
    assert f"port {held_port} is already in use" in message
    assert "stop the process holding it" in message and "choose another port" in message
    assert caught.value.port == held_port and server.port == held_port and server.pid is None


def test_cluster_with_a_taken_route_port_chooses_all_its_ports_again(
        embedded_tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # free_port calls: 3 client ports, then 3 route ports: the first node's route port is held,
    # so that node binds its client port, then exits (nats-server listens for routes after clients)
    choose, answers = _chooser(held_port, at={4})
    monkeypatch.setattr(embedded_cluster, "free_port", choose)
    cluster = EmbeddedNatsCluster(embedded_tmp_path / "c", size=3, provision_replicas=None)
    with capture_logs() as logs:
        cluster.start()
    try:
        assert answers[3] == held_port and len(answers) == 18  # two rounds of 9 ports
        assert [e["port"] for e in _retries(logs)] == [held_port]
        assert held_port not in [*cluster.route_ports, *cluster.monitor_ports, *(n.port for n in cluster.nodes)]
        assert all(cluster.healthy(i) for i in range(3))
    finally:
        cluster.stop()


async def test_stack_servers_choose_again_when_their_chosen_ports_are_taken(
        embedded_tmp_path: Path, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # free_port calls: NATS monitor, NATS client (held), again both, then PostgreSQL (held), again
    monkeypatch.setenv(stack.ANY_FREE_PORT, "1")
    choose, answers = _chooser(held_port, at={2, 5})
    monkeypatch.setattr(stack, "free_port", choose)
    settings = stack.StackSettings(data_dir=embedded_tmp_path / "data", nats_url=None, database_url=None)
    watched: list[Watched] = []
    with ExitStack() as servers, capture_logs() as logs:
        nats_url, database_url = stack.start_servers(settings, servers, watched)
        assert len(answers) == 6
        assert [(e["server"], e["port"]) for e in _retries(logs)] == [("nats-server", held_port),
                                                                      ("PostgreSQL", held_port)]
        assert nats_url == f"nats://127.0.0.1:{answers[3]}" and f":{answers[5]}/" in database_url
        assert watched[0].monitor == f"http://127.0.0.1:{answers[2]}"
        assert all(item.server.pid is not None for item in watched)
        conn = await asyncpg.connect(database_url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    assert all(item.server.pid is None for item in watched)
