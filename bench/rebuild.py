"""Projection rebuild throughput (audit log, summaries) beside a raw JetStream batch fetch.

    uv run python bench/rebuild.py --events 1000000

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), fills
CUSTOMER_EVENTS with customer events and CALLS with call records (`--events` each), then for
each stream: a raw batch fetch of it in Python (the baseline: fetch only, no decoding, no
database; and the same with the pipelined pull requests the rebuild itself reads with), and the rebuild of its projection into fresh tables with the switch-over.
Target (issue 21): each rebuild >= 0.6 of the raw pipelined pull in the same run. Also printed:
the CPU microseconds per event of this process (the rebuild), PostgreSQL and nats-server.

    uv run python bench/rebuild.py --events 200000 --personal --encryption both

`--personal` gives the customer events personal data (PayPal e-mail and address lines on every
card and in updates); `--encryption both` fills and rebuilds twice in one run (fresh servers
each), once with those fields encrypted as the customer service writes them and once in
clear, rebuilds the audit log of each and prints the ratio, with the cost of encrypting and
opening one event in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from reporting.bootstrap import connect
from reporting.projections.audit import AuditProjection
from reporting.projections.calls import CallsProjection
from reporting.projections.rebuild import Rebuilder
from reporting.projections.split import Connect
from reporting.rebuild_cli import run_tuned
from reporting.settings import ReportingSettings
from reporting.simulator import publish_backlog
from shared.envelope import Actor, EventEnvelope, Metadata
from shared.personal_data import DataKey, decrypt_events, encrypt_event, encrypt_events, needs_key
from shared.stream_replay import replay

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, servers

BATCH = 5000


class LocalKeys:
    """A key per subject in memory (the bench's stand-in for the customer service's key table)."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}

    def key(self, subject: str) -> DataKey:
        if subject not in self.keys:
            self.keys[subject] = DataKey.of(uuid.uuid4().hex[:16], subject, os.urandom(32))
        return self.keys[subject]

    async def for_subjects(self, subjects: Iterable[str]) -> dict[str, DataKey]:
        return {s: self.key(s) for s in subjects}

    async def by_ids(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        by_id = {k.key_id: k for k in self.keys.values()}
        return {i: by_id[i] for i in key_ids if i in by_id}


def _personalize(kind: str, data: dict[str, Any], i: int) -> dict[str, Any]:
    if kind == "CustomerCreated":
        return data | {"paypal_email": f"pay{i}@bench.example",
                       "address": {"line1": f"{i} Bench Street", "line2": "Floor 2", "city": "Berlin",
                                   "region": None, "postcode": "10115", "country": "DE"}}
    if kind == "CustomerUpdated":
        changes = data["changes"] | {"paypal_email": {"old": f"old{i}@bench.example", "new": f"new{i}@bench.example"}}
        return {"changes": changes}
    return data


def customer_events(count: int, customers: int = 20_000, *, personal: bool = False) -> Iterator[EventEnvelope]:
    """Created + updated + status events of many customers, in the order the relay publishes them."""
    rng = random.Random(1)
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    versions = dict.fromkeys(ids, 0)
    actor = Actor(kind="operator", id="tok-bench", name="bench", ip="192.0.2.1")
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
        if personal:
            data = _personalize(kind, data, i)
        yield EventEnvelope(type=kind, category="customer", stream_id=cid, version=v,
                            occurred_at=t0 + timedelta(seconds=i), data=data,
                            metadata=Metadata(actor=actor, correlation_id=uuid.uuid4().hex))


async def fill_customer_events(
    js: JetStreamContext, count: int, customers: int = 20_000, *, personal: bool = False,
    keys: LocalKeys | None = None,
) -> list[EventEnvelope]:
    """Publish customer_events() as the relay does (a sample of them is returned, as published)."""
    pending = []
    sample: list[EventEnvelope] = []
    for event in customer_events(count, customers, personal=personal):
        if keys is not None and (subject := needs_key(event)) is not None:
            event = encrypt_event(event, keys.key(subject))
        if len(sample) < 20_000:
            sample.append(event)
        pending.append(await js.publish_async(event.subject, event.model_dump_json().encode(),
                                              headers={"Nats-Msg-Id": str(event.event_id)}))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return sample


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


async def raw_pull(
    js: JetStreamContext, stream: str, subjects: list[str], *, direct: bool = True
) -> tuple[int, float]:
    """Baseline 2: the same read with pipelined pull requests (what the rebuild reads with);
    direct=False: through nats-py's own message path (how the pull read when the issue was filed)."""
    n = 0
    t0 = time.perf_counter()
    async for msgs in replay(js, stream, subjects, start_seq=1, until_seq=2**62, batch=BATCH, direct=direct):
        n += len(msgs)
    return n, time.perf_counter() - t0


async def run(
    nats_url: str, db_url: str, events: int, repeat: int, *, personal: bool = False, encrypt: bool = False,
    profile: str | None = None, processes: tuple[int, ...] = (2,),
) -> list[float]:
    settings = ReportingSettings(nats_url=nats_url, database_url=db_url)
    pool, service_nc = await connect(settings)  # migrates the schema
    await service_nc.close()
    # the streams are filled and replayed as the operator's tools do (the provisioner identity:
    # the reporting service may neither publish customer events nor make replay consumers)
    nc = await bus.connect(nats_url, "provisioner")
    js = nc.jetstream()
    print(f"filling CUSTOMER_EVENTS and CALLS with {events:,} messages each ...", file=sys.stderr)
    t0 = time.perf_counter()
    keys = LocalKeys() if encrypt else None
    sample = await fill_customer_events(js, events, personal=personal, keys=keys)
    pairs: tuple[tuple[Any, str], ...] = ((AuditProjection(), "CUSTOMER_EVENTS"),)
    if not personal:  # the call records carry no personal data: the personal runs leave them out
        await publish_backlog(js, [str(uuid.uuid4()) for _ in range(2000)], events, days=60)
        pairs += ((CallsProjection(), "CALLS"),)
    print(f"  filled in {time.perf_counter() - t0:.0f} s\n", file=sys.stderr)
    if keys is not None:
        await crypto_cost(sample, keys)
    rates: list[float] = []
    for projection, stream in pairs:
        # the baselines read the way the rebuild does: the whole stream, unfiltered
        [source] = [s for s in projection.sources if s.stream == stream]
        subjects = list(source.replay_subjects)
        for attempt in range(repeat):
            n, seconds = await raw_fetch(js, stream, subjects)
            fetch_rate = n / seconds
            n, seconds = await raw_pull(js, stream, subjects)
            pull_rate = n / seconds
            n, seconds = await raw_pull(js, stream, subjects, direct=False)
            nats_py_rate = n / seconds
            for procs in processes if projection.bulk_split else processes[:1]:
                spy = await start_profile(profile, f"{projection.name}-{procs}") if profile else None
                split = Connect(nats_url, db_url, {"search_path": "reporting"}) if procs > 1 else None
                meter = CpuMeter()
                meter.start()
                waited = sum(os.times()[2:4])  # the second process, once it has exited
                result = await Rebuilder(pool, js, projection, batch=BATCH, split=split).run()
                cpu = meter.per_op_us(result.events)
                if split is not None:
                    cpu += f", split {(sum(os.times()[2:4]) - waited) / result.events * 1e6:,.0f}"
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await asyncio.wait_for(spy.wait(), 30)
                print(f"{stream:<16} raw fetch() {fetch_rate:>9,.0f}/s   raw pipelined pull {pull_rate:>9,.0f}/s   "
                      f"rebuild {projection.name:<9} {result.rate:>9,.0f}/s   ratio {result.rate / fetch_rate:.2f}"
                      f" of fetch(), {result.rate / pull_rate:.2f} of pull   ({result.events:,} events,"
                      f" {result.seconds:.1f} s)" + (f"  run {attempt + 1}" if repeat > 1 else "")
                    + (f"  {procs} processes" if projection.bulk_split else ""), flush=True)
                print(f"{'':<16} the pull through nats-py's Msg path {nats_py_rate:,.0f}/s: the rebuild "
                      f"{result.rate / nats_py_rate:.2f} of it", flush=True)
                phases = ", ".join(f"{k} {v:.1f} s" for k, v in getattr(result, "phases", {}).items())
                replay = getattr(result, "phases", {}).get("replay")
                replay_rate = f"; the replay alone {result.events / replay:,.0f}/s, {result.events / replay / pull_rate:.2f}" \
                    f" of pull ({phases})" if replay else ""
                print(f"{'':<16} {cpu} (client: this process, the rebuild; split: its second process){replay_rate}", flush=True)
                rates.append(result.rate)
    print(f"\nload average {os.getloadavg()[0]:.1f}; target: every rebuild >= 0.6 of the raw pipelined pull")
    await nc.drain()
    await pool.close()
    return rates


async def start_profile(directory: str, name: str) -> asyncio.subprocess.Process:
    """py-spy (native frames, collapsed stacks) on this process for one rebuild."""
    os.makedirs(directory, exist_ok=True)
    spy = await asyncio.create_subprocess_exec(
        "py-spy", "record", "--native", "--format", "raw", "--rate", "100", "--pid", str(os.getpid()),
        "--output", f"{directory}/{name}.txt", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(1.5)  # attached before the rebuild starts
    return spy


async def crypto_cost(sample: list[EventEnvelope], keys: LocalKeys) -> None:
    """CPU time of encrypting and opening one event in this process (what a writer / reader pays)."""
    plain = await decrypt_events(sample, keys)
    t0 = time.process_time()
    await encrypt_events(plain, keys)
    enc_us = (time.process_time() - t0) / len(sample) * 1e6
    t0 = time.process_time()
    await decrypt_events(sample, keys)
    dec_us = (time.process_time() - t0) / len(sample) * 1e6
    print(f"per event (sample of {len(sample):,}): encrypt {enc_us:.1f} us, open {dec_us:.1f} us", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="messages per stream")
    parser.add_argument("--repeat", type=int, default=1, help="rebuild each projection this many times")
    parser.add_argument("--personal", action="store_true", help="customer events carry personal data")
    parser.add_argument("--encryption", choices=["on", "off", "both"], default="off",
                        help="personal data encrypted as the customer service writes it; both: one pass each")
    parser.add_argument("--processes", default="1,2",
                        help="rebuild with 1 and/or 2 processes (split.py; audit only), e.g. 1,2")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy --native each rebuild into DIR/<projection>.txt (collapsed stacks)")
    args = parser.parse_args()
    passes = ["on", "off"] if args.encryption == "both" else [args.encryption]
    rates: dict[str, list[float]] = {}
    for mode in passes:
        print(f"--- personal data encryption {mode} ---", flush=True)
        with servers() as (nats_url, db_url):
            rates[mode] = run_tuned(run(nats_url, db_url, args.events, args.repeat,
                                        personal=args.personal, encrypt=mode == "on", profile=args.profile,
                                        processes=tuple(int(p) for p in args.processes.split(","))))
    if len(rates) == 2:
        on, off = sum(rates["on"]) / len(rates["on"]), sum(rates["off"]) / len(rates["off"])
        print(f"\naudit rebuild, encryption on / off: {on:,.0f}/s vs {off:,.0f}/s, ratio {on / off:.2f}"
              " (target: within 15%)")


if __name__ == "__main__":
    main()
