"""Customer commands over NATS from concurrent clients in another process, beside a FastStream echo.

    make bench-commands        (or: uv run python bench/commands.py --clients 32 --seconds 10)

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service as its own process, and a bare FastStream echo as the baseline; this process
is the client. Prints throughput and p50/p99 of the echo, creates, and updates; per phase the CPU
per operation and how busy each process kept its core, and the customer service's command worker:
commands per batch and its share of the phase awaiting the append (its /metrics, on a free port).

    uv run python bench/commands.py --personal --encryption both

`BENCH_TRACE=<dir>` (diagnostics) also writes each request's timeline, the customer service's
(PATCHBAY_COMMAND_TRACE), PostgreSQL's checkpoint/autovacuum log and WAL position into <dir>;
`bench/commands_trace.py <dir>` says where the slowest requests spent their time
(docs/performance.md, "Commands: service and tail latency, fourth round").

`--personal` gives every card a PayPal e-mail and address lines and every update a new PayPal
e-mail (the fields section 15 encrypts); `--encryption both` runs the customer service twice in
one run, with PATCHBAY_ENCRYPT_PERSONAL=1 and =0 (fresh servers each), and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, Result, closed_loop, process, servers, wait_answering


def _worker_figures(ops_port: int | None) -> dict[str, float]:
    """The customer service's command-worker counters (its /metrics), or {} when not served."""
    if ops_port is None:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith("patchbay_command_") and "_created" not in line}


def _cycle(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """The worker's batches over a phase: their size and its share of the time awaiting the append."""
    def delta(name: str) -> float:
        return after.get(f"patchbay_command_{name}_total", 0.0) - before.get(f"patchbay_command_{name}_total", 0.0)
    if not delta("batches"):
        return ""
    return (f"\n    command worker: {delta('batched') / delta('batches'):.1f} commands per batch, in batches"
            f" {delta('batch_seconds') / seconds:.0%} of the phase, awaiting the append"
            f" {delta('append_wait_seconds') / seconds:.0%}")


async def run(nats_url: str, clients: int, seconds: float, personal: bool = False,
              ops_port: int | None = None) -> list[Result]:
    admin = await bus.connect(nats_url, "provisioner")  # the echo baseline (not a gateway subject)
    nc = await bus.connect(nats_url, "gateway")  # commands as the gateway sends them: signed, an actor named
    actor = {"kind": "operator", "id": "bench", "name": "bench"}
    body = json.dumps({"customer": {"name": "x" * 20, "currency": "EUR", "channels": 10}}).encode()
    run_id = uuid.uuid4().hex[:8]
    trace_dir = os.environ.get("BENCH_TRACE")  # diagnostics: each request's timeline (bench/commands_trace.py)
    timeline: list[tuple[str, float, float]] = []

    async def echo(w: int, i: int) -> bool:
        msg = await admin.request("bench.echo", body, timeout=5)
        return bool(msg.data)

    ids: list[list[str]] = [[] for _ in range(clients)]

    async def create(w: int, i: int) -> bool:
        payload: dict[str, Any] = {
            "meta": {"command_id": f"{run_id}-{w}-{i}", "actor": actor},
            "customer": {"name": f"bench {run_id} {w}-{i}", "currency": "EUR", "channels": 10, "tags": ["bench"]}}
        if trace_dir:
            payload["meta"]["correlation_id"] = f"c-{w}-{i}"
            t0 = time.perf_counter()
        if personal:
            payload["customer"] |= {"paypal_email": f"pay-{w}-{i}@bench.example",
                                    "address": {"line1": f"{i} Bench Street", "line2": "Floor 2", "city": "Berlin"}}
        msg = await nc.request("customer.cmd.create", json.dumps(payload).encode(), timeout=5)
        if trace_dir:
            timeline.append((f"c-{w}-{i}", t0, time.perf_counter()))
        reply = json.loads(msg.data)
        if "id" in reply:
            ids[w].append(reply["id"])
        return "id" in reply

    async def update(w: int, i: int) -> bool:
        mine = ids[w]
        if not mine:
            return False
        changes: dict[str, Any] = {"channels": i % 50 + 1, "notes": f"n{i}"}
        if personal:
            changes["paypal_email"] = f"pay-{w}-{i}@bench.example"
        payload = {"customer_id": mine[i % len(mine)], "changes": changes, "meta": {"actor": actor}}
        if trace_dir:
            payload["meta"]["correlation_id"] = f"u-{w}-{i}"
            t0 = time.perf_counter()
        msg = await nc.request("customer.cmd.update", json.dumps(payload).encode(), timeout=5)
        if trace_dir:
            timeline.append((f"u-{w}-{i}", t0, time.perf_counter()))
        return b'"error"' not in msg.data[:10]

    print(f"clients {clients}, {seconds:.0f} s each, client in this process, services in others\n")
    await closed_loop("warm-up", echo, clients=clients, seconds=1, progress=False)
    cpu = CpuMeter()
    results = []
    phases: list[tuple[str, float, float]] = []
    for name, op in (("FastStream echo (baseline)", echo), ("customer.cmd.create", create),
                     ("customer.cmd.update", update)):
        cpu.start()
        before, worker_before = cpu.totals(), _worker_figures(ops_port)
        phase_start = time.perf_counter()
        result = await closed_loop(name, op, clients=clients, seconds=seconds)
        phases.append((name, phase_start, time.perf_counter()))
        busy = _busy(before, cpu.totals(), result.seconds)
        cycle = _cycle(worker_before, _worker_figures(ops_port), result.seconds)
        results.append((result, f"{cpu.per_op_us(result.count)}\n    {busy}{cycle}"))
    print()
    baseline = results[0][0]
    for result, cpu_line in results:
        print(result.line(None if result is baseline else baseline))
        print(f"    {cpu_line}")
    print("\ntarget (issue 21): >= 4,000/s, p99 < 15 ms, >= 0.4 of the echo")
    if trace_dir:
        _write(Path(trace_dir, "client.json"),
               {"timeline": timeline, "phases": phases, "clock": [time.time(), time.perf_counter()]})
    await nc.close()
    await admin.close()
    return [r for r, _ in results]


def _busy(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """How much of a core each kind of process kept busy over a phase (1.00 = one core all the time).

    The customer service runs on one core: well under 1.00 while the rate is flat means it waits
    (on PostgreSQL's commit, mostly), not that it is short of CPU.
    """
    parts = [f"{kind} {(after[kind] - before.get(kind, 0.0)) / seconds:.2f}" for kind in sorted(after)
             if after[kind] - before.get(kind, 0.0) > 0.05]
    return "CPU busy (cores): " + ", ".join(parts)


def _write(path: Path, value: Any) -> None:
    path.write_text(value if isinstance(value, str) else json.dumps(value))


async def _log_postgres(db_url: str) -> None:
    """Diagnostics: PostgreSQL logs its checkpoints and autovacuum runs (epoch times) into postgres.log."""
    import asyncpg

    conn = await asyncpg.connect(db_url)
    extra = [x for x in os.environ.get("BENCH_TRACE_PG", "").split(";") if x]  # e.g. "wal_init_zero = off"
    for setting in ("log_checkpoints = on", "log_autovacuum_min_duration = 0", "log_line_prefix = '%n [%p] '",
                    *extra):
        await conn.execute(f"ALTER SYSTEM SET {setting}")
    await conn.execute("SELECT pg_reload_conf()")
    where = await conn.fetchval("SHOW data_directory")
    _write(Path(os.environ["BENCH_TRACE"], "pgdata"), where)
    await conn.close()


class _WalSampler:
    """Diagnostics: PostgreSQL's WAL position every 5 ms (a thread of its own), to wal.json."""

    def __init__(self, db_url: str) -> None:
        import threading

        self.db_url, self.samples, self.done = db_url, [], threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.db_url)
        while not self.done.is_set():
            lsn = await conn.fetchval("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
            self.samples.append((time.perf_counter(), int(lsn)))
            await asyncio.sleep(0.005)
        await conn.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)
        _write(Path(os.environ["BENCH_TRACE"], "wal.json"), self.samples)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--personal", action="store_true", help="cards and updates carry personal data")
    parser.add_argument("--encryption", choices=["on", "off", "both"], default="on",
                        help="PATCHBAY_ENCRYPT_PERSONAL of the customer service; both: one pass each")
    parser.add_argument("--rounds", type=int, default=1, help="with both: on/off passes, alternating")
    args = parser.parse_args()
    passes = ["on", "off"] * args.rounds if args.encryption == "both" else [args.encryption]
    measured: dict[str, list[list[Result]]] = {"on": [], "off": []}
    for mode in passes:
        print(f"--- personal data encryption {mode} ---")
        with servers() as (nats_url, db_url):
            ops_port = _free_port()  # the customer service's /metrics: its command worker's counters
            env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url, "PATCHBAY_OPS_PORT": str(ops_port),
                   "PATCHBAY_ENCRYPT_PERSONAL": "1" if mode == "on" else "0",
                   **({"PATCHBAY_COMMAND_TRACE": str(Path(os.environ["BENCH_TRACE"], "service.jsonl"))}
                      if os.environ.get("BENCH_TRACE") else {}),
                   "PATCHBAY_SECRET_KEY": os.environ.get("PATCHBAY_SECRET_KEY") or Fernet.generate_key().decode()}
            with process([sys.executable, str(Path(__file__).parent / "echo_service.py")], env), \
                    process([sys.executable, *(os.environ.get("CUSTOMER_CMD", "-m customer").split())], env):
                asyncio.run(wait_answering(nats_url, "bench.echo", b"{}"))
                asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
                if os.environ.get("BENCH_TRACE"):
                    asyncio.run(_log_postgres(db_url))
                sampler = _WalSampler(db_url) if os.environ.get("BENCH_TRACE") else None
                measured[mode].append(asyncio.run(run(nats_url, args.clients, args.seconds, args.personal,
                                                      ops_port)))
                if sampler is not None:
                    sampler.stop()
                if os.environ.get("BENCH_TRACE"):
                    trace = Path(os.environ["BENCH_TRACE"])
                    (trace / "postgres.log").write_bytes(
                        (Path((trace / "pgdata").read_text()) / "postgres.log").read_bytes())
    if measured["on"] and measured["off"]:
        print(f"\nencryption on / off, median of {args.rounds} alternating round(s) (target: within 15%)")
        for i in (1, 2):
            on = statistics.median(r[i].rate for r in measured["on"])
            off = statistics.median(r[i].rate for r in measured["off"])
            on_p50 = statistics.median(r[i].pct(0.5) for r in measured["on"])
            off_p50 = statistics.median(r[i].pct(0.5) for r in measured["off"])
            print(f"  {measured['on'][0][i].name:<22} {on:>9,.0f}/s vs {off:>9,.0f}/s   ratio {on / off:.2f}"
                  f"   p50 {on_p50:.2f} vs {off_p50:.2f} ms")


if __name__ == "__main__":
    main()
