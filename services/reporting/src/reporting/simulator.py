"""A call-traffic simulator: realistic `calls.started.*` / `calls.cdr.*` for chosen customers.

    python -m reporting.simulator --customers ID,ID --rate 50 --seconds 60
    python -m reporting.simulator --customers ID --backlog 100000 --days 30   (history, fast)

Live mode starts `rate` calls per second and publishes each record when the call ends (call
lengths scaled by `--time-scale`, so a demo fills up in seconds). Backlog mode publishes
finished calls spread over the past days as fast as JetStream takes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nats.js import JetStreamContext
from shared.stack_file import locate, tool_nats

DISPOSITIONS = (("answered", 0.55), ("no_answer", 0.2), ("busy", 0.13), ("failed", 0.07), ("cancelled", 0.05))
SIP = {"answered": 200, "no_answer": 480, "busy": 486, "failed": 503, "cancelled": 487}
RATE_PER_MINUTE = (Decimal("0.0060"), Decimal("0.0450"))
MARGIN = (Decimal("0.55"), Decimal("0.85"))  # cost as a share of the charge


def _number(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(9))


Message = dict[str, Any]


def make_call(rng: random.Random, customer_id: str, started_at: datetime) -> tuple[Message, Message]:
    """One call: its start message and its record (per-minute billing, decimal money strings)."""
    call_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    disposition = rng.choices([d for d, _ in DISPOSITIONS], [w for _, w in DISPOSITIONS])[0]
    pdd_ms = int(rng.lognormvariate(7.3, 0.4))  # ~1.5 s typical
    cli, destination = _number(rng, "+4930"), _number(rng, rng.choice(("+4940", "+4420", "+3314")))
    answered = disposition == "answered"
    duration = min(int(rng.expovariate(1 / 110)) + 1, 7200) if answered else 0
    billed = (duration + 59) // 60 * 60
    per_minute = Decimal(rng.randint(*(int(x * 10000) for x in RATE_PER_MINUTE))) / 10000
    charge = (per_minute * billed / 60).quantize(Decimal("0.0001"))
    cost = (charge * Decimal(rng.uniform(*(float(m) for m in MARGIN)))).quantize(Decimal("0.0001"))
    setup = timedelta(milliseconds=pdd_ms)
    answered_at = started_at + setup + timedelta(seconds=rng.uniform(2, 15)) if answered else None
    ended_at = (answered_at + timedelta(seconds=duration)) if answered_at else started_at + setup
    start = {"call_id": call_id, "customer_id": customer_id, "started_at": started_at.isoformat(),
             "cli": cli, "destination": destination}
    record = {
        **start, "answered_at": answered_at.isoformat() if answered_at else None,
        "ended_at": ended_at.isoformat(), "duration_s": duration, "billed_duration_s": billed,
        "charge": str(charge), "cost": str(cost), "disposition": disposition,
        "sip_code": SIP[disposition], "pdd_ms": pdd_ms,
    }
    return start, record


async def publish_backlog(
    js: JetStreamContext, customers: Sequence[str], count: int, *, days: float = 30.0,
    seed: int = 1, window: int = 2000, with_starts: bool = False,
) -> int:
    """Publish `count` finished calls spread over the past days; return messages published."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = int(days * 86400)
    pending: list[Any] = []
    published = 0
    for _ in range(count):
        cid = rng.choice(customers)
        start, record = make_call(rng, cid, now - timedelta(seconds=rng.randrange(span) + 7200))
        if with_starts:
            pending.append(await js.publish_async(f"calls.started.{cid}", json.dumps(start).encode()))
        pending.append(await js.publish_async(f"calls.cdr.{cid}", json.dumps(record).encode()))
        if len(pending) >= window:
            published += len(await asyncio.gather(*pending))
            pending.clear()
    published += len(await asyncio.gather(*pending))
    return published


async def run_live(
    js: JetStreamContext, customers: Sequence[str], *, rate: float, seconds: float, time_scale: float,
    seed: int | None = None,
) -> tuple[int, int]:
    """Start `rate` calls/s for `seconds`; publish each record when its (scaled) call ends."""
    rng = random.Random(seed)
    tasks: set[asyncio.Task[None]] = set()
    started = ended = 0

    async def finish(record: dict[str, Any], after: float) -> None:
        nonlocal ended
        await asyncio.sleep(after)
        await js.publish(f"calls.cdr.{record['customer_id']}", json.dumps(record).encode())
        ended += 1

    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(elapsed * rate) + 1 - started
        for _ in range(due):
            cid = rng.choice(customers)
            start, record = make_call(rng, cid, datetime.now(UTC))
            await js.publish(f"calls.started.{cid}", json.dumps(start).encode())
            started += 1
            length = datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(start["started_at"])
            task = asyncio.create_task(finish(record, length.total_seconds() * time_scale))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, (started / rate) - (time.monotonic() - t0)))
    if tasks:
        await asyncio.gather(*tasks)
    return started, ended


def parser(prog: str = "patchbay simulate") -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(prog=prog, description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--customers", required=True, help="comma-separated customer ids")
    cli.add_argument("--rate", type=float, default=20.0, help="calls started per second (live mode)")
    cli.add_argument("--seconds", type=float, default=60.0, help="how long to start calls (live mode)")
    cli.add_argument("--time-scale", type=float, default=0.05,
                     help="real seconds per simulated call second (1 = real time)")
    cli.add_argument("--backlog", type=int, default=0, help="publish this many past calls instead")
    cli.add_argument("--days", type=float, default=30.0, help="backlog spread over this many days")
    cli.add_argument("--seed", type=int, default=None, help="random seed (repeatable traffic)")
    cli.add_argument("--nats-url", default=None,
                     help="comma-separated for a cluster; default: PATCHBAY_NATS_URL, else the running stack")
    return cli


async def main(argv: Sequence[str] | None = None, prog: str = "patchbay simulate") -> int:
    """Run the simulator."""
    args = parser(prog).parse_args(argv)
    customers = [c.strip() for c in args.customers.split(",") if c.strip()]
    if not customers:
        print("simulator: --customers names no customer", file=sys.stderr)
        return 2
    nc = await tool_nats(args.nats_url or locate().nats_url, "switch")
    js = nc.jetstream()
    t0 = time.monotonic()
    try:
        if args.backlog:
            n = await publish_backlog(js, customers, args.backlog, days=args.days, seed=args.seed or 1)
            print(f"published {n:,} call records in {time.monotonic() - t0:.1f} s")
        else:
            started, ended = await run_live(js, customers, rate=args.rate, seconds=args.seconds,
                                            time_scale=args.time_scale, seed=args.seed)
            print(f"started {started:,} calls, {ended:,} records, in {time.monotonic() - t0:.1f} s")
    finally:
        await nc.drain()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
