"""Ledger rebuild throughput beside the raw pipelined pull of CALLS, in the same run.

    .venv/bin/python bench/ledger_rebuild.py --records 200000

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), makes the
customer schema, gives `--customers` customers a tax history, fills CALLS with `--records` call
records (as `patchbay simulate --backlog` does), then: the raw pipelined pull of the whole stream
(the rebuilds' reader, shared.stream_replay, the baseline bench/rebuild.py uses too; no decoding,
no database), and the ledger rebuild (`patchbay rebuild ledger`) with its switch-over.
Target (issue 21): the rebuild >= 0.6 of the raw pipelined pull. Also printed: CPU microseconds
per record of this process (the rebuild), PostgreSQL and nats-server, and each phase's seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from customer.bootstrap import MIGRATIONS, SCHEMA
from customer.projections.ledger_rebuild import LedgerRebuilder
from nats.js import JetStreamContext
from reporting.rebuild_cli import run_tuned
from reporting.simulator import publish_backlog
from shared.migrations import migrate
from shared.stream_replay import replay

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, servers
from rebuild import start_profile

BATCH = 5000


async def raw_pull(js: JetStreamContext, *, direct: bool = True) -> tuple[int, float]:
    """Every CALLS message, read and dropped by the rebuilds' reader (shared.stream_replay);
    direct=False: the same reader through nats-py's own message path (the issue's first baseline)."""
    n = 0
    t0 = time.perf_counter()
    async for msgs in replay(js, "CALLS", (), start_seq=1, until_seq=2**62, batch=BATCH, direct=direct):
        n += len(msgs)
    return n, time.perf_counter() - t0


async def run(nats_url: str, db_url: str, records: int, customers: int, repeat: int, profile: str | None) -> None:
    await bus.provision(nats_url)
    await migrate(db_url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=3, server_settings={"search_path": SCHEMA})
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    await pool.executemany("INSERT INTO tax_history (customer_id, effective_at, tax) VALUES ($1, now() - interval"
                           " '400 days', $2)", [(c, 19 if i % 3 else 7.5) for i, c in enumerate(ids)])
    nc = await bus.connect(nats_url, "provisioner")
    js = nc.jetstream()
    print(f"filling CALLS with {records:,} call records of {customers:,} customers ...", file=sys.stderr)
    t0 = time.perf_counter()
    await publish_backlog(js, ids, records, days=60)
    print(f"  filled in {time.perf_counter() - t0:.0f} s\n", file=sys.stderr)
    for attempt in range(repeat):
        spy = await start_profile(profile, f"pull-{attempt + 1}") if profile else None
        meter = CpuMeter()
        before = meter.totals()
        n, seconds = await raw_pull(js)
        pull, pull_cpu = n / seconds, cpu_us(before, meter.totals(), n)
        n, seconds = await raw_pull(js, direct=False)
        nats_py_pull = n / seconds
        await stop_profile(spy)
        spy = await start_profile(profile, f"ledger-{attempt + 1}") if profile else None
        before = meter.totals()
        result = await LedgerRebuilder(pool, js, batch=BATCH).run()
        cpu = cpu_us(before, meter.totals(), result.messages)
        await stop_profile(spy)
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items())
        replay_s = result.phases.get("replay", 0.0)
        print(f"CALLS raw pipelined pull {pull:>9,.0f}/s"
              f"   rebuild ledger {result.rate:>9,.0f}/s   ratio {result.rate / pull:.2f} of pull"
              f"   ({result.rate / nats_py_pull:.2f} of the pull through nats-py's Msg path, {nats_py_pull:,.0f}/s)"
              f"   ({result.records:,} calls, {result.seconds:.1f} s)"
              + (f"  run {attempt + 1}" if repeat > 1 else ""), flush=True)
        alone = f"; the replay alone {result.messages / replay_s:,.0f}/s, " \
            f"{result.messages / replay_s / pull:.2f} of pull" if replay_s else ""
        print(f"{'':<6}pull: {pull_cpu}; rebuild: {cpu} (client: this process, the rebuild){alone} ({phases})",
              flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f}; target: the rebuild >= 0.6 of the raw pipelined pull")
    await nc.drain()
    await pool.close()


def cpu_us(before: dict[str, float], after: dict[str, float], n: int) -> str:
    """CPU µs per record of this process (client), PostgreSQL and nats-server, one decimal."""
    kinds = ("client", "postgres", "nats-server")
    return "CPU µs/record: " + ", ".join(
        f"{k} {(after.get(k, 0.0) - before.get(k, 0.0)) / n * 1e6:.1f}" for k in kinds)


async def stop_profile(spy: asyncio.subprocess.Process | None) -> None:
    """py-spy writes its file when interrupted."""
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        await asyncio.wait_for(spy.wait(), 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="call records on CALLS")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="rebuild this many times")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy --native the pull and the rebuild into DIR/{pull,ledger}-<run>.txt")
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        run_tuned(run(nats_url, db_url, args.records, args.customers, args.repeat, args.profile))


if __name__ == "__main__":
    main()
