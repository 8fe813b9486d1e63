"""Alert rules evaluated while call records stream in: evaluation lag beside the raw ingestion rate.

    uv run python bench/alerts.py [--rules 100] [--customers 10000] [--rate 5000] [--seconds 60]

Starts embedded NATS + PostgreSQL (or PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL) and the alerts
service as its own process; creates the rules (a tenth scoped to all customers, four tenths to a
tag, half to one customer; every area but invoice_overdue), gives the customers their cards
(CustomerCreated with tags, tax, debit limit, on CUSTOMER_EVENTS), then publishes call records at
a steady rate. Lag of a record: from its publish to the commit of the batch that judged it,
seen from outside as the first poll (every 20 ms) at which its partition's checkpoint covers it.
Baselines in the same run: the publish rate JetStream accepted, and a raw nats-py fetch() of
the same stream. Target: lag p99 < 1 s at 5,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import sys
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from shared.envelope import EventEnvelope
from shared.streams import ensure_streams

from shared import bus

# this file is named like the service's package: import the package, not this script
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.modules.pop("alerts", None)
from alerts.domain.partitions import partition_of  # noqa: E402

sys.path.insert(0, str(HERE))
from _harness import process, servers, wait_answering  # noqa: E402
from rebuild import raw_fetch  # noqa: E402

AREAS = [("asr", "lt", "20", "25"), ("acd", "lt", "5", "10"), ("pdd", "gt", "4000", "3000"),
         ("attempts_per_minute", "gt", "30", "20"), ("daily_spend", "gt", "500", "400"),
         ("balance", "lt", "-200", "-100"), ("available_credit", "lt", "-50", "0")]
TAGS = 40


def rules(n: int, customers: list[str]) -> list[dict[str, Any]]:
    """n rules: 10 % all customers, 40 % a tag, 50 % one customer."""
    out = []
    for i in range(n):
        area, op, threshold, reset = AREAS[i % len(AREAS)]
        if i < n // 10:
            scope: dict[str, Any] = {"all": True}
        elif i < n // 2:
            scope = {"tag": f"t{i % TAGS}"}
        else:
            scope = {"customer_id": customers[i * 97 % len(customers)]}
        actions = {"email_operators": ["noc@carrier.example"]} if i % 10 == 0 else {}
        out.append({"name": f"bench {i}", "scope": scope, "area": area, "operator": op, "threshold": threshold,
                    "reset_threshold": reset, "window_minutes": 5 + i % 10, "min_attempts": 10,
                    "actions": actions, "level": "warning"})
    return out


def card(cid: str, i: int) -> bytes:
    """A CustomerCreated envelope (the fields the alerts service reads)."""
    data = {"name": f"bench {i}", "tags": [f"t{i % TAGS}", f"t{i * 7 % TAGS}"], "currency": "USD",
            "tax": "10", "debit_limit": "100"}
    return EventEnvelope(type="CustomerCreated", category="customer", stream_id=cid, version=1,
                         data=data).model_dump_json().encode()


def record(cid: str, rnd: random.Random, end: datetime) -> bytes:
    """One call record ending at `end`."""
    answered = rnd.random() < 0.45
    duration = rnd.randint(5, 300) if answered else 0
    return json.dumps({
        "call_id": uuid.uuid4().hex, "customer_id": cid,
        "started_at": (end - timedelta(seconds=duration + 3)).isoformat(),
        "answered_at": (end - timedelta(seconds=duration)).isoformat() if answered else None,
        "ended_at": end.isoformat(), "duration_s": duration, "billed_duration_s": duration,
        "charge": f"{duration * 0.0002:.4f}", "cost": "0", "disposition": "answered" if answered else "failed",
        "pdd_ms": rnd.randint(200, 5000)}).encode()


async def checkpoints(db: asyncpg.Connection) -> dict[int, int]:
    rows = await db.fetch("SELECT consumer, last_seq FROM alerts.checkpoints WHERE consumer LIKE 'alerts-calls-p%'")
    return {int(r["consumer"].rsplit("p", 1)[1]): r["last_seq"] for r in rows}


async def run(nats_url: str, db_url: str, args: argparse.Namespace) -> None:
    nc = await bus.connect(nats_url, "provisioner")
    js = nc.jetstream()
    await ensure_streams(js)
    rnd = random.Random(5)
    customers = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(args.customers)]
    for body in rules(args.rules, customers):
        reply = json.loads((await nc.request("alerts.cmd.create", json.dumps({"rule": body}).encode(),
                                             timeout=10)).data)
        assert "error" not in reply, reply
    acks = [await js.publish_async(f"events.customer.{cid}.CustomerCreated", card(cid, i))
            for i, cid in enumerate(customers)]
    await asyncio.gather(*acks)
    db = await asyncpg.connect(db_url)
    while await db.fetchval("SELECT count(*) FROM alerts.customers") < len(customers):
        await asyncio.sleep(0.2)
    print(f"{args.rules} rules, {len(customers):,} customers with cards", file=sys.stderr)

    # per partition, the records not yet judged: (stream sequence, published at), in stream order
    waiting: dict[int, deque[tuple[int, float]]] = {p: deque() for p in range(8)}
    lags: list[float] = []
    acked = 0

    failed = 0

    def on_ack(fut: asyncio.Future[Any], p: int, at: float) -> None:
        nonlocal acked, failed
        acked += 1
        if fut.exception() is not None:
            failed += 1
            return
        waiting[p].append((fut.result().seq, at))

    async def poll(until_all: int) -> None:
        while True:
            now = time.monotonic()
            marks = await checkpoints(db)
            for p, queue in waiting.items():
                while queue and marks.get(p, 0) >= queue[0][0]:
                    lags.append(now - queue.popleft()[1])
            if len(lags) >= until_all - failed:
                return
            if now >= report_at[0]:
                report_at[0] = now + 5
                print(f"  {acked:,} published, {len(lags):,} judged", file=sys.stderr, flush=True)
            await asyncio.sleep(0.02)

    total = args.rate * args.seconds
    report_at = [time.monotonic() + 5]
    tick = 0.01
    per_tick = max(1, int(args.rate * tick))
    # made beforehand, ending when they will be sent: the publishing loop only sends
    base = datetime.now(UTC)
    made = []
    for n in range(total):
        cid = customers[rnd.randrange(len(customers))]
        made.append((f"calls.cdr.{cid}", record(cid, rnd, base + timedelta(seconds=n / args.rate)),
                     partition_of(cid)))
    poller = asyncio.create_task(poll(total))
    t0 = time.monotonic()
    for n in range(0, total, per_tick):
        target = t0 + n / args.rate
        if (delay := target - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        for subject, payload, p in made[n:n + per_tick]:
            fut = await js.publish_async(subject, payload)
            fut.add_done_callback(functools.partial(on_ack, p=p, at=time.monotonic()))
    while acked < total:
        await asyncio.sleep(0.01)
    published_s = time.monotonic() - t0
    await asyncio.wait_for(poller, 120)
    firings = await db.fetchval("SELECT count(*) FROM alerts.firings")
    await db.close()
    lags.sort()
    rate = total / published_s
    n, s = await raw_fetch(js, "CALLS", ["calls.cdr.>"])
    print(f"published (JetStream acked)             {rate:>9,.0f}/s   ({total - failed:,} records,"
          f" {failed:,} not acked, {published_s:.1f} s)")
    print(f"raw fetch() of CALLS (baseline)         {n / s:>9,.0f}/s")
    if lags:
        pct = [lags[min(len(lags) - 1, int(len(lags) * q))] * 1000 for q in (0.5, 0.9, 0.99)]
        print(f"evaluation lag                          p50 {pct[0]:6.0f} ms  p90 {pct[1]:6.0f} ms"
              f"  p99 {pct[2]:6.0f} ms  max {lags[-1] * 1000:6.0f} ms  ({len(lags):,} of {total:,} judged)")
    print(f"firings                                 {firings:,}")
    print("\ntarget: lag p99 < 1 s at 5,000 records/s")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url}
        with process([sys.executable, "-m", "alerts"], env):
            asyncio.run(wait_answering(nats_url, "alerts.query.list", b"{}"))
            asyncio.run(run(nats_url, db_url, args))


if __name__ == "__main__":
    main()
