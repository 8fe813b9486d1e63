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
from shared.envelope import Actor, EventEnvelope, Metadata

sys.path.insert(0, str(Path(__file__).parent))
from _harness import servers

BATCH = 5000
Message = tuple[str, bytes]


def customer_events(count: int, customers: int = 20_000) -> list[Message]:
    """Created, updated and status events in bench/rebuild.py's mix."""
    rng = random.Random(1)
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    versions = dict.fromkeys(ids, 0)
    actor = Actor(kind="operator", id="tok-bench", name="bench", ip="192.0.2.1")
    t0 = datetime.now(UTC) - timedelta(days=90)
    out = []
    for i in range(count):
        cid = ids[i % customers] if i < customers else rng.choice(ids)
        versions[cid] += 1
        v = versions[cid]
        if v == 1:
            kind, data = "CustomerCreated", {
                "name": f"bench {cid[:8]}", "paypal_email": None, "website": None, "status": "active",
                "penalty_until": None, "debit_limit": "0", "minimum_payment": "0", "tax": "19",
                "currency": "EUR", "portal_access": True, "channels": 10, "cps": "5",
                "address": {"country": "DE"}, "tags": ["bench"], "config_toml": "",
                "verification": {"email_required": False, "mobile_required": False,
                                 "approved_clis_only": False}, "notes": ""}
        elif v % 5 == 0:
            kind, data = "CustomerStatusChanged", {"old": "active", "new": "inactive", "until": None,
                                                   "old_until": None}
        else:
            kind, data = "CustomerUpdated", {"changes": {"channels": {"old": v - 1, "new": v},
                                                         "notes": {"old": "", "new": f"note {i}"}}}
        event = EventEnvelope(type=kind, category="customer", stream_id=cid, version=v,
                              occurred_at=t0 + timedelta(seconds=i), data=data,
                              metadata=Metadata(actor=actor, correlation_id=uuid.uuid4().hex))
        out.append((event.subject, event.model_dump_json().encode()))
    return out


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
