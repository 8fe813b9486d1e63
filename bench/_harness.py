"""Shared bits of the benchmarks: servers, service processes, a closed-loop load generator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.embedded import EmbeddedNats, EmbeddedPostgres

from shared import bus


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL when set, else embedded servers in a temp dir."""
    nats_url = os.environ.get("PATCHBAY_NATS_URL")
    db_url = os.environ.get("PATCHBAY_DATABASE_URL")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="patchbay-bench-")))
        if not nats_url:
            n = EmbeddedNats(tmp / "nats")
            nats_url = n.start()
            stack.callback(n.stop)
        if not db_url:
            pg = EmbeddedPostgres(tmp / "pg", unsafe_fast=bool(os.environ.get("BENCH_UNSAFE")))
            db_url = pg.start()
            stack.callback(pg.stop)
            # WAL segments ready for reuse, as on a server that has run a while: a fresh cluster
            # makes each new one inside a commit (docs/performance.md, "Commands: PostgreSQL,
            # fourth round"); 40 x 16 MB covers bench/commands.py with 10 s phases (~27)
            pg.recycle_wal(40)
        yield nats_url, db_url


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (its output in a log file under /tmp), terminated at the end."""
    log_path = Path(tempfile.mkstemp(prefix="patchbay-bench-", suffix=".log")[1])
    print(f"  {' '.join(Path(a).name for a in args[1:])}: log in {log_path}", file=sys.stderr)
    out = log_path.open("wb")
    proc = subprocess.Popen(
        args, env={**os.environ, **env, "PATCHBAY_LOG_LEVEL": "WARNING"},
        stdout=out, stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


async def wait_answering(nats_url: str, subject: str, payload: bytes, timeout: float = 60) -> None:
    """Wait (bounded) until a subject answers."""
    nc = await bus.connect(nats_url, "provisioner")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                await nc.request(subject, payload, timeout=0.5)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{subject} never answered") from None
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


@dataclass
class Result:
    """Throughput and latency of one run."""

    name: str
    count: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.count / self.seconds

    def pct(self, p: float) -> float:
        """A latency percentile in ms."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def line(self, baseline: Result | None = None) -> str:
        """One printable line, with the ratio to a baseline."""
        ratio = f"  ratio {self.rate / baseline.rate:.2f} of {baseline.name}" if baseline else ""
        return (
            f"{self.name:<34} {self.rate:>9,.0f}/s  p50 {self.pct(0.5):6.2f} ms"
            f"  p99 {self.pct(0.99):6.2f} ms  errors {self.errors}{ratio}"
        )


async def closed_loop(
    name: str, op: Callable[[int, int], Awaitable[bool]], *, clients: int, seconds: float,
    progress: bool = True,
) -> Result:
    """`clients` workers each run `op(worker, i)` back to back for `seconds`."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            ok = await op(w, i)
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += not ok
            i += 1

    async def report() -> None:
        while True:
            await asyncio.sleep(1)
            print(f"  {name}: {len(latencies):,} done", file=sys.stderr, flush=True)

    reporter = asyncio.create_task(report()) if progress else None
    t0 = time.monotonic()
    await asyncio.gather(*[worker(w) for w in range(clients)])
    elapsed = time.monotonic() - t0
    if reporter:
        reporter.cancel()
    return Result(name, len(latencies), errors, elapsed, latencies)


class CpuMeter:
    """CPU seconds used by each kind of process (this client, services, postgres, nats) per phase."""

    def __init__(self) -> None:
        self._start: dict[str, float] = {}

    @staticmethod
    def _by_kind() -> dict[str, float]:
        import psutil

        me = psutil.Process()
        totals: dict[str, float] = {"client": sum(me.cpu_times()[:2])}
        for proc in me.children(recursive=True):
            try:
                name = proc.name()
                cmd = proc.cmdline()
                times = proc.cpu_times()
            except psutil.Error:
                continue
            if "postgres" in name:
                kind = "postgres"
            elif "nats-server" in name:
                kind = "nats-server"
            elif "-m" in cmd:
                kind = cmd[cmd.index("-m") + 1]
            else:
                kind = Path(cmd[-1]).stem if cmd else name
            totals[kind] = totals.get(kind, 0.0) + times.user + times.system
        return totals

    def totals(self) -> dict[str, float]:
        """CPU seconds used so far by each kind of process."""
        return self._by_kind()

    def start(self) -> None:
        """Mark the beginning of a phase."""
        self._start = self._by_kind()

    def per_op_us(self, ops: int) -> str:
        """CPU microseconds per operation by process kind since start()."""
        now = self._by_kind()
        parts = [
            f"{kind} {(now[kind] - self._start.get(kind, 0.0)) / max(ops, 1) * 1e6:,.0f}"
            for kind in sorted(now)
            if now[kind] - self._start.get(kind, 0.0) > 0.05
        ]
        return "CPU µs/op: " + ", ".join(parts)


def summary(values: list[float]) -> str:
    """Median of repeated figures."""
    return f"{statistics.median(values):,.0f}"
