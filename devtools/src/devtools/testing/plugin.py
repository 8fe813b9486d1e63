"""The `patchbay` pytest plugin: real NATS and PostgreSQL for tests, embedded by default."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
import structlog
from nats.aio.client import Client as NatsClient
from shared.bus import provision_blocking
from shared.bus_credentials import ensure_credentials
from shared.bus_identities import PROVISIONER

import shared  # noqa: F401 - before any test: importlib mode would take the shared/ folder for it
from devtools.embedded import EmbeddedNats, EmbeddedPostgres
from devtools.stack import ANY_FREE_PORT
from devtools.testing.server_choice import (
    NATS_IMAGE,
    POSTGRES_IMAGE,
    ServerChoiceError,
    choose_servers,
    testcontainers_installed,
)
from shared import bus

log = structlog.get_logger()
pytest_plugins = [  # markers by need (browser tests never skipped quietly); hypothesis profiles; xdist groups
    "devtools.testing.needs", "devtools.testing.properties", "devtools.testing.workers",
    "devtools.testing.hang_guard",  # a hung async test fails within its timeout (docs/testing.md)
]

MakeDatabase = Callable[[], Awaitable[str]]


def docker_engine_answers(timeout: float = 1.0) -> bool:
    """True when a Docker engine answers a ping on its socket (the client binary proves nothing)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    try:
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parts.path)
        elif parts.scheme == "tcp":
            sock = socket.create_connection((parts.hostname, parts.port or 2375), timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(1024)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _use_testcontainers() -> bool:
    """PATCHBAY_TEST_SERVERS=docker (checked: installed, engine answers), else embedded."""
    try:
        return choose_servers(os.environ, installed=testcontainers_installed,
                              docker_answers=docker_engine_answers) == "docker"
    except ServerChoiceError as exc:
        pytest.fail(str(exc), pytrace=False)


def _start(what: str, start: Callable[[], str]) -> str:
    """Start a server, turning any failure into a clear test failure (never a skip)."""
    try:
        return start()
    except Exception as exc:
        pytest.fail(f"could not start {what} for the tests: {exc}\n"
                    f"(set PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL to use existing servers)",
                    pytrace=False)


@contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A temp dir outside pytest's basetemp, removed afterwards.

    As root, postgres runs as user pgserver, which must traverse every parent of its data
    dir; pytest resets /tmp/pytest-of-<user> to 0700 whenever any pytest session starts, so
    a data dir under tmp_path can become unreachable in the middle of a run.
    """
    path = Path(tempfile.mkdtemp(prefix=f"patchbay-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def embedded_tmp_path() -> Iterator[Path]:
    """A fresh directory for an embedded server's data (use it instead of tmp_path)."""
    with server_dir("test") as path:
        yield path


def pytest_configure(config: pytest.Config) -> None:
    """Every test connects to NATS with credentials: one set of seeds per session (0600, 0700 dir).

    `PATCHBAY_NATS_CREDENTIALS_DIR` points every embedded server, service and client of the session
    (subprocesses too) at it; set it yourself with PATCHBAY_NATS_URL, to your server's seeds.
    """
    # stacks started by tests (two workers, other people's runs) take free ports, never race
    # for the well-known 4222/5432/8222/9101... (a name without PATCHBAY_: child envs keep it)
    os.environ[ANY_FREE_PORT] = "1"
    if os.environ.get("PATCHBAY_NATS_CREDENTIALS_DIR"):
        return
    path = Path(tempfile.mkdtemp(prefix="patchbay-credentials-"))
    ensure_credentials(path)
    os.environ["PATCHBAY_NATS_CREDENTIALS_DIR"] = str(path)
    config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """URL of a JetStream-enabled, authenticated NATS with the streams made: PATCHBAY_NATS_URL, else embedded.

    (The container of PATCHBAY_TEST_SERVERS=docker has no authorization block: untested here.)
    """
    if url := os.environ.get("PATCHBAY_NATS_URL"):
        provision_blocking(url)
        yield url
        return
    with ExitStack() as stack:
        if _use_testcontainers():
            from testcontainers.nats import NatsContainer

            # no authorization block in the container (untested here): clients' nkeys are not checked
            container = NatsContainer(NATS_IMAGE).with_command("-js")
            stack.callback(container.stop)
            yield _start("NATS container", lambda: str(container.start().get_conn_string()))
            return
        server = EmbeddedNats(stack.enter_context(server_dir("nats")))
        stack.callback(server.stop)
        yield _start("embedded nats-server", server.start)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a PostgreSQL: PATCHBAY_DATABASE_URL, else testcontainers, else embedded."""
    if url := os.environ.get("PATCHBAY_DATABASE_URL"):
        yield url
        return
    with ExitStack() as stack:
        if _use_testcontainers():
            from testcontainers.postgres import PostgresContainer

            pg = PostgresContainer(POSTGRES_IMAGE, driver=None)
            stack.callback(pg.stop)
            yield _start("PostgreSQL container", lambda: str(pg.start().get_connection_url()))
            return
        server = EmbeddedPostgres(stack.enter_context(server_dir("pg")), unsafe_fast=True)
        stack.callback(server.stop)
        yield _start("embedded PostgreSQL", server.start)


def with_database(url: str, name: str) -> str:
    """Return url pointing at database name on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def make_database(database_url: str) -> AsyncIterator[MakeDatabase]:
    """Factory: `await make_database()` creates an empty database and returns its URL."""
    created: list[str] = []

    async def make() -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return with_database(database_url, name)

    yield make
    if not created:
        return
    conn = await asyncpg.connect(database_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest_asyncio.fixture(loop_scope="session")
async def nats(nats_url: str) -> AsyncIterator[NatsClient]:
    """A NATS client with every right (the provisioner: the tests' admin), drained at teardown."""
    client = await bus.connect(nats_url, PROVISIONER, max_reconnect_attempts=2)
    try:
        yield client
    finally:
        if not client.is_closed:
            await client.drain()

