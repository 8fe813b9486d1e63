"""A rebuild's bulk load measured apart from NATS: CPU per event of each phase, this process and PostgreSQL.

    .venv/bin/python bench/rebuild_parts.py --events 100000

Makes the bench's customer events and call records in memory (as bench/rebuild.py publishes
them), then for each projection: the `__next` tables as a rebuild makes them, the messages
decoded (`bulk_decode`) and written (`bulk_write`, COPY) in batches of 5,000, `bulk_finish`, and
the secondary indexes with ANALYZE. Prints the CPU microseconds per event of the decoding and
the writing in this process, and of PostgreSQL per phase (from /proc). No NATS: the read, which
the pull baseline pays too, is left out, so a change to the work after the read shows alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import uvloop
from reporting.bootstrap import connect
from reporting.projections.audit import AuditProjection
from reporting.projections.base import Projection, Tables
from reporting.projections.bulk_codecs import bulk_codecs, reset_bulk_codecs
from reporting.projections.calls import CallsProjection
from reporting.projections.rebuild import Rebuilder
from reporting.settings import ReportingSettings
from reporting.simulator import make_call

sys.path.insert(0, str(Path(__file__).parent))
import rebuild as rebuild_bench
from _harness import servers

BATCH = 5000
Message = tuple[str, bytes]


def customer_events(count: int, customers: int = 20_000) -> list[Message]:
    """Created, updated and status events in bench/rebuild.py's mix, as published."""
    return [(e.subject, e.model_dump_json().encode()) for e in rebuild_bench.customer_events(count, customers)]


def call_records(count: int, customers: int = 2000) -> list[Message]:
    """Finished calls over 60 days, as the simulator's backlog publishes them."""
    rng = random.Random(1)
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        cid = rng.choice(ids)
        _, record = make_call(rng, cid, now - timedelta(seconds=rng.randrange(60 * 86400) + 7200))
        out.append((f"calls.cdr.{cid}", json.dumps(record).encode()))
    return out


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process below this one."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if "postgres" in proc.name():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


async def load(pool: Any, projection: Projection[Any], stream: str, msgs: list[Message]) -> str:
    """One bulk load with its phases; the figures as one line."""
    rebuilder = Rebuilder(pool, None, projection)  # type: ignore[arg-type]  # no NATS: tables only
    await rebuilder._create_next()
    tables = Tables.next(projection.tables)
    n = len(msgs)
    conn = await pool.acquire()
    await bulk_codecs(conn)
    gc.disable()
    decoding = 0.0
    c0, p0 = time.process_time(), postgres_cpu()
    for i in range(0, n, BATCH):
        d0 = time.process_time()
        items = [projection.bulk_decode(stream, i + k + 1, s, m) for k, (s, m) in enumerate(msgs[i:i + BATCH])]
        decoding += time.process_time() - d0
        await projection.bulk_write(conn, tables, stream, items, i + len(items))
    c1, p1 = time.process_time(), postgres_cpu()
    await projection.bulk_finish(conn, tables)
    p2, w2 = postgres_cpu(), time.perf_counter()
    gc.enable()
    await reset_bulk_codecs(conn)
    await pool.release(conn)
    await rebuilder._index_next()
    p3, w3 = postgres_cpu(), time.perf_counter()

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:.2f}"

    return (f"{projection.name:<9} client: decode {us(decoding)}, write {us(c1 - c0 - decoding)} µs/event | "
            f"PostgreSQL: COPY {us(p1 - p0)}, finish {us(p2 - p1)}, indexes + ANALYZE {us(p3 - p2)}"
            f" ({w3 - w2:.2f} s), total {us(p3 - p0)} µs/event")


async def run(events: int, repeat: int) -> None:
    audit, calls = customer_events(events), call_records(events)
    with servers() as (nats_url, db_url):
        pool, nc = await connect(ReportingSettings(nats_url=nats_url, database_url=db_url))
        await nc.close()
        try:
            for _ in range(repeat):
                print(await load(pool, AuditProjection(), "CUSTOMER_EVENTS", audit), flush=True)
                print(await load(pool, CallsProjection(), "CALLS", calls), flush=True)
        finally:
            await pool.close()
    print(f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="messages per projection")
    parser.add_argument("--repeat", type=int, default=1, help="loads of each projection")
    args = parser.parse_args()
    uvloop.run(run(args.events, args.repeat))


if __name__ == "__main__":
    main()
