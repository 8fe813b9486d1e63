"""The local stack runner: servers, supervised services, clean shutdown, stale cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from devtools.embedded import free_port
from devtools.stack import StackSettings, banner, load_admin_token, redact_url, stop_stale_children
from devtools.testing.waiting import wait_for
from pydantic import SecretStr

from devtools import stack

FAKES = Path(__file__).parent / "fakes"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for runner and fake children."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    return env | {"PYTHONPATH": str(FAKES), "PATCHBAY_DATA_DIR": str(data_dir)} | extra


def test_redact_url_masks_only_the_password() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_url("postgresql://postgres@127.0.0.1:5/x") == "postgresql://postgres@127.0.0.1:5/x"


def test_the_banner_links_the_console_and_the_portal() -> None:
    text = banner(http="http://127.0.0.1:18080", nats_url="nats://127.0.0.1:4222",
                  database_url="postgresql://postgres@127.0.0.1:5432/patchbay", token="pb_x")
    assert "http://127.0.0.1:18080/console/" in text and "http://127.0.0.1:18080/portal/" in text


def test_a_cluster_stack_of_the_tests_takes_any_free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cluster stacks at once (tests of two people or workers) both found 4222 free and raced."""
    monkeypatch.setenv(stack.ANY_FREE_PORT, "1")
    assert stack.cluster_ports(3) is None
    monkeypatch.delenv(stack.ANY_FREE_PORT)
    assert stack.cluster_ports(3) == [4222, 4223, 4224]


def test_admin_token_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = StackSettings(data_dir=tmp_path)
    token = load_admin_token(settings)
    assert len(token) >= 40
    assert stat.S_IMODE((tmp_path / "admin_token").stat().st_mode) == 0o600
    assert load_admin_token(settings) == token
    configured = StackSettings(data_dir=tmp_path, admin_token=SecretStr("given"))
    assert load_admin_token(configured) == "given"


def test_stale_children_are_stopped_and_strangers_spared(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "patchbay_fake_worker"], env=_env(tmp_path))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "patchbay_fake_worker.pid").write_text(f"{child.pid}\n")
        (run / "customer.pid").write_text(f"{stranger.pid}\n")
        assert stop_stale_children(run) == [child.pid]
        assert child.wait(10) == 0
        assert stranger.poll() is None
        assert not list(run.glob("*.pid"))
    finally:
        stranger.kill()
        child.kill()
        stranger.wait()
        child.wait()


@dataclass
class Runner:
    """A `python -m devtools.stack run` process and what it printed."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    def printed(self, text: str) -> str | None:
        """The first output line containing text, if any."""
        return next((line for line in self.lines if text in line), None)

    def family(self) -> list[psutil.Process]:
        """The runner and all its descendants."""
        me = psutil.Process(self.proc.pid)
        return [me, *me.children(recursive=True)]


@asynccontextmanager
async def running_stack(data_dir: Path, http_port: int) -> AsyncIterator[Runner]:
    """Start the runner with fake services; kill it at the end whatever happened."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.stack",
        "run",
        "--services",
        "patchbay_fake_worker,patchbay_fake_http,not_installed_service",
        "--http-service",
        "patchbay_fake_http",
        env=_env(data_dir, PATCHBAY_HTTP_PORT=str(http_port)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    runner = Runner(proc)

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            runner.lines.append(raw.decode(errors="replace"))

    reader = asyncio.create_task(read())
    try:
        await wait_for(
            lambda: runner.printed("admin token:") or proc.returncode is not None,
            timeout=60,
            message="the stack banner",
        )
        assert proc.returncode is None, "".join(runner.lines)
        yield runner
    finally:
        if proc.returncode is None:
            for p in runner.family():
                with suppress(psutil.NoSuchProcess):
                    p.kill()
            await proc.wait()
        await reader


def _living(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of procs still running; zombies (PID 1 here may never reap them) count as dead."""
    living = []
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
    return living


def _servers_on(data_dir: Path) -> list[psutil.Process]:
    """nats-server / postgres processes whose command line mentions data_dir."""
    return _living(
        [
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] in {"nats-server", "postgres"}
            and any(str(data_dir.resolve()) in a for a in p.info["cmdline"] or [])
        ]
    )


def _get(url: str) -> str:
    """GET url and return the body."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def _worker_starts(data_dir: Path) -> list[str]:
    path = data_dir / "worker_starts"
    return path.read_text().split() if path.exists() else []


@pytest.mark.servers
async def test_runner_supervises_and_stops_everything_on_sigterm(embedded_tmp_path: Path) -> None:
    port = free_port()
    async with running_stack(embedded_tmp_path, port) as runner:
        assert runner.printed(f"http://127.0.0.1:{port}/docs")
        token = (embedded_tmp_path / "admin_token").read_text().strip()
        assert runner.printed(f"admin token: {token}")
        assert runner.printed("database:  postgresql://postgres@127.0.0.1:")
        nats_line = runner.printed("NATS:")
        assert nats_line is not None
        reply = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/readyz")
        assert reply == nats_line.split()[-1], "services get PATCHBAY_NATS_URL"
        family = runner.family()
        assert {p.name() for p in family} >= {"nats-server", "postgres"}
        assert len(_servers_on(embedded_tmp_path)) == 2

        [first] = await wait_for(lambda: _worker_starts(embedded_tmp_path), timeout=10)
        os.kill(int(first), signal.SIGKILL)
        restarted = await wait_for(lambda: len(_worker_starts(embedded_tmp_path)) == 2, timeout=15)
        assert restarted
        assert runner.printed("service exited; restarting")

        runner.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(runner.proc.wait(), 30) == 0
        await wait_for(lambda: _living(family) == [], timeout=5, message="no process left")
        assert _servers_on(embedded_tmp_path) == []
        assert not list((embedded_tmp_path / "run").glob("*.pid"))


@pytest.mark.servers
async def test_runner_recovers_after_being_killed(embedded_tmp_path: Path) -> None:
    async with running_stack(embedded_tmp_path, free_port()) as runner:
        old = runner.family()
        token = (embedded_tmp_path / "admin_token").read_text().strip()
        for p in old:  # the harshest crash: everything dies at once, leaving pid files
            with suppress(psutil.NoSuchProcess):
                p.kill()
        await runner.proc.wait()
    async with running_stack(embedded_tmp_path, free_port()) as runner:
        assert runner.printed(f"admin token: {token}")
        assert _living(old) == []
        assert len(_servers_on(embedded_tmp_path)) == 2
        runner.proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(runner.proc.wait(), 30) == 0
    assert _servers_on(embedded_tmp_path) == []


@pytest.mark.servers
async def test_runner_kill_9_takes_children_down(embedded_tmp_path: Path) -> None:
    async with running_stack(embedded_tmp_path, free_port()) as runner:
        children = runner.family()[1:]
        runner.proc.kill()
        await runner.proc.wait()
        await wait_for(
            lambda: _living(children) == [], timeout=15, message="children to die with their killed runner"
        )


def _alive_pid(pid: int) -> bool:
    with suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


@pytest.mark.servers
async def test_runner_restarts_its_dead_servers_on_their_data(embedded_tmp_path: Path) -> None:
    import json

    import asyncpg

    from shared import bus

    async with running_stack(embedded_tmp_path, free_port()) as runner:
        info = json.loads((embedded_tmp_path / "run" / "stack.json").read_text())
        assert info["pid"] == runner.proc.pid
        [monitor] = info["nats_monitoring"]
        assert runner.printed(f"monitoring: nats-server {monitor}")
        assert runner.printed("are watched: one that dies is restarted on the same data")
        assert (await asyncio.to_thread(_get, f"{monitor}/healthz")).strip().startswith("{")
        conn = await asyncpg.connect(info["database_url"])
        await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        await conn.close()

        postmaster = int((embedded_tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        nats_pid = int((embedded_tmp_path / "nats" / "nats.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        os.kill(nats_pid, signal.SIGKILL)
        await wait_for(lambda: runner.printed("embedded PostgreSQL restarted"), timeout=60,
                       message="the runner to restart PostgreSQL:\n" + "".join(runner.lines))
        await wait_for(lambda: runner.printed("embedded nats-server restarted"), timeout=60,
                       message="the runner to restart nats-server")
        assert runner.printed("embedded PostgreSQL died; restarting it on the same data")
        assert not _alive_pid(postmaster) and not _alive_pid(nats_pid)
        conn = await asyncpg.connect(info["database_url"])  # same URL, same data
        assert await conn.fetchval("SELECT x FROM kept") == 7
        await conn.close()
        seed = (embedded_tmp_path / "credentials" / "provisioner.nk").read_text()  # made by the runner
        nc = await bus.connect(info["nats_url"], "provisioner", seed=seed)
        assert (await nc.jetstream().account_info()) is not None
        await nc.close()
        runner.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(runner.proc.wait(), 30) == 0
    assert not (embedded_tmp_path / "run" / "stack.json").exists()
    assert _servers_on(embedded_tmp_path) == []
