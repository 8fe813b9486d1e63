"""Projection rebuild throughput (audit log, summaries) beside a raw JetStream batch fetch.

    uv run python bench/rebuild.py --events 1000000

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), fills
CUSTOMER_EVENTS with customer events and CALLS with call records (`--events` each), then for
each stream: a raw batch fetch of it in Python (the baseline: fetch only, no decoding, no
database; and the same with the pipelined pull requests the rebuild itself reads with), and the rebuild of its projection into fresh tables with the switch-over.
Target: >= 50,000 events/s and >= 0.5 of the raw fetch.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from reporting.bootstrap import connect
from reporting.projections.audit import AuditProjection
from reporting.projections.calls import CallsProjection
from reporting.projections.rebuild import Rebuilder
from reporting.projections.replay import replay
from reporting.rebuild_cli import run_tuned
from reporting.settings import ReportingSettings
from reporting.simulator import publish_backlog
from shared.envelope import Actor, EventEnvelope, Metadata

sys.path.insert(0, str(Path(__file__).parent))
from _harness import servers

BATCH = 5000


async def fill_customer_events(js: JetStreamContext, count: int, customers: int = 20_000) -> None:
    """Created + updated + status events of many customers, as the relay publishes them."""
    rng = random.Random(1)
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    versions = dict.fromkeys(ids, 0)
    actor = Actor(kind="operator", id="tok-bench", name="bench", ip="192.0.2.1")
    pending = []
    t0 = datetime.now(UTC) - timedelta(days=90)
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
        pending.append(await js.publish_async(event.subject, event.model_dump_json().encode(),
                                              headers={"Nats-Msg-Id": str(event.event_id)}))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def raw_fetch(js: JetStreamContext, stream: str, subjects: list[str]) -> tuple[int, float]:
    """Baseline 1: every message of the stream by nats-py's batch `fetch()`, nothing else."""
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                            filter_subjects=subjects if len(subjects) > 1 else None, mem_storage=True,
                            inactive_threshold=30.0)
    sub = await js.pull_subscribe(subjects[0] if subjects else ">", stream=stream, config=config)
    total = (await sub.consumer_info()).num_pending
    n = 0
    t0 = time.perf_counter()
    while n < total:
        n += len(await sub.fetch(BATCH, timeout=2))
    elapsed = time.perf_counter() - t0
    await sub.unsubscribe()
    return n, elapsed


async def raw_pull(js: JetStreamContext, stream: str, subjects: list[str]) -> tuple[int, float]:
    """Baseline 2: the same read with pipelined pull requests (what the rebuild reads with)."""
    n = 0
    t0 = time.perf_counter()
    async for msgs in replay(js, stream, subjects, start_seq=1, until_seq=2**62, batch=BATCH):
        n += len(msgs)
    return n, time.perf_counter() - t0


async def run(nats_url: str, db_url: str, events: int, repeat: int) -> None:
    settings = ReportingSettings(nats_url=nats_url, database_url=db_url)
    pool, nc = await connect(settings)
    js = nc.jetstream()
    print(f"filling CUSTOMER_EVENTS and CALLS with {events:,} messages each ...", file=sys.stderr)
    t0 = time.perf_counter()
    await fill_customer_events(js, events)
    await publish_backlog(js, [str(uuid.uuid4()) for _ in range(2000)], events, days=60)
    print(f"  filled in {time.perf_counter() - t0:.0f} s\n", file=sys.stderr)
    for projection, stream in ((AuditProjection(), "CUSTOMER_EVENTS"), (CallsProjection(), "CALLS")):
        # the baselines read the way the rebuild does: the whole stream, unfiltered
        [source] = [s for s in projection.sources if s.stream == stream]
        subjects = list(source.replay_subjects)
        for attempt in range(repeat):
            n, seconds = await raw_fetch(js, stream, subjects)
            fetch_rate = n / seconds
            n, seconds = await raw_pull(js, stream, subjects)
            pull_rate = n / seconds
            result = await Rebuilder(pool, js, projection, batch=BATCH).run()
            print(f"{stream:<16} raw fetch() {fetch_rate:>9,.0f}/s   raw pipelined pull {pull_rate:>9,.0f}/s   "
                  f"rebuild {projection.name:<9} {result.rate:>9,.0f}/s   ratio {result.rate / fetch_rate:.2f}"
                  f" of fetch(), {result.rate / pull_rate:.2f} of pull   ({result.events:,} events,"
                  f" {result.seconds:.1f} s)" + (f"  run {attempt + 1}" if repeat > 1 else ""), flush=True)
    print("\ntarget: >= 50,000 events/s and >= 0.5 of the raw fetch")
    await nc.drain()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="messages per stream")
    parser.add_argument("--repeat", type=int, default=1, help="rebuild each projection this many times")
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        run_tuned(run(nats_url, db_url, args.events, args.repeat))


if __name__ == "__main__":
    main()
