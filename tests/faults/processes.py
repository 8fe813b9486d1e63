"""Real servers and service processes for fault tests: start, kill -9, stop, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools.embedded import EmbeddedNats, EmbeddedPostgres, die_with_parent, free_port
from devtools.embedded_cluster import EmbeddedNatsCluster
from shared.secrets import Sealer


@dataclass
class Servers:
    """PostgreSQL and NATS (one node or a cluster) owned by one test."""

    postgres: EmbeddedPostgres
    nats: EmbeddedNats | EmbeddedNatsCluster
    database_url: str
    nats_url: str


@contextmanager
def running_servers(base: Path, *, cluster: int = 1, sync_always: bool = True) -> Iterator[Servers]:
    """Start a durable PostgreSQL and NATS (cluster > 1: that many nodes) under base."""
    postgres = EmbeddedPostgres(base / "pg")
    nats: EmbeddedNats | EmbeddedNatsCluster = (
        EmbeddedNatsCluster(base / "nats", size=cluster) if cluster > 1
        else EmbeddedNats(base / "nats", sync_always=sync_always)
    )
    try:
        database_url = postgres.start()
        nats_url = nats.start()
        yield Servers(postgres, nats, database_url, nats_url)
    finally:
        nats.stop()
        postgres.stop()


@dataclass
class ServiceProcess:
    """One `python -m <service>` child with its own ops port and log file."""

    name: str
    env: dict[str, str]
    log_path: Path
    ops_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        """Spawn the service (from the main thread: it dies with its parent)."""
        env = os.environ | self.env | {"PATCHBAY_OPS_PORT": str(self.ops_port),
                                       "PATCHBAY_LOG_FORMAT": "json"}
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.name], env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(signal.SIGKILL))
        self.starts += 1

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}/readyz", timeout=1) as r:
                return int(r.status) == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until ready; fail with the log's tail if it dies or takes too long."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited; log:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout} s; log:\n{self.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        """The end of the service's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_lines(self, needle: str) -> list[str]:
        """Log lines containing needle."""
        try:
            return [line for line in self.log_path.read_text(errors="replace").splitlines()
                    if needle in line]
        except OSError:
            return []


@contextmanager
def running_service(name: str, env: dict[str, str], log_path: Path) -> Iterator[ServiceProcess]:
    """A service process, ready; stopped at the end, its log's tail printed (pytest shows it on failure)."""
    proc = ServiceProcess(name, env, log_path)
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
        print(f"--- {name} log (shown when the test fails) ---\n{proc.tail(60)}")


def service_env(servers: Servers, **extra: str) -> dict[str, str]:
    """The environment every service needs to reach the test's servers."""
    env = {"PATCHBAY_NATS_URL": servers.nats_url, "PATCHBAY_DATABASE_URL": servers.database_url,
           "PATCHBAY_SECRET_KEY": Sealer.new_key(), "PATCHBAY_LOG_LEVEL": "INFO"}
    return env | extra
