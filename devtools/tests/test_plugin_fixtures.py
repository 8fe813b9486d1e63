"""The patchbay pytest plugin: server fixtures, fresh databases, a NATS client."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from devtools.testing.plugin import docker_engine_answers, with_database
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient

pytestmark = pytest.mark.servers
pytest_plugins = ["pytester"]


async def test_database_url_points_at_a_live_server(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


async def test_make_database_gives_distinct_empty_databases(
    make_database: Callable[[], Awaitable[str]],
) -> None:
    first, second = await make_database(), await make_database()
    assert first != second
    conn = await asyncpg.connect(first)
    try:
        await conn.execute("CREATE TABLE t (x int)")
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 1
    finally:
        await conn.close()
    conn = await asyncpg.connect(second)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


async def test_nats_client_round_trip(nats: NatsClient) -> None:
    subject = f"test.{uuid.uuid4().hex}"
    received: list[bytes] = []

    async def collect(msg: object) -> None:
        received.append(msg.data)  # type: ignore[attr-defined]

    await nats.subscribe(subject, cb=collect)
    await nats.flush()
    await nats.publish(subject, b"ping")
    await wait_for(lambda: received == [b"ping"], timeout=5)


async def test_nats_has_jetstream(nats: NatsClient) -> None:
    info = await nats.jetstream().account_info()
    assert info.limits is not None


def test_with_database_swaps_only_the_name() -> None:
    url = "postgresql://u:p@h:5/patchbay?sslmode=disable"
    assert with_database(url, "x") == "postgresql://u:p@h:5/x?sslmode=disable"


def test_docker_detection_needs_an_answering_engine(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pytest.TempPathFactory,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    assert docker_engine_answers() is False
    with socket.socket() as silent:  # accepts, never answers like Docker
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        assert docker_engine_answers(timeout=0.2) is False


def test_env_urls_take_precedence(
    pytester: pytest.Pytester,
    nats_url: str,
    database_url: str,
) -> None:
    pytester.makepyfile(f"""
        def test_urls(nats_url, database_url):
            assert nats_url == {nats_url!r}
            assert database_url == {database_url!r}
    """)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATCHBAY_NATS_URL", nats_url)
        env.setenv("PATCHBAY_DATABASE_URL", database_url)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_server_that_cannot_start_fails_the_test_clearly(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest
        from devtools.embedded import EmbeddedNats

        @pytest.fixture(autouse=True, scope="session")
        def _no_binary():
            def missing():
                raise FileNotFoundError("nats-server is gone")
            EmbeddedNats.binary = staticmethod(missing)
    """)
    pytester.makepyfile("def test_needs_nats(nats_url):\n    pass\n")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("PATCHBAY_NATS_URL", raising=False)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not start embedded nats-server*nats-server is gone*"])
