"""Dial permission over NATS from concurrent clients in another process, beside a bare nats-py echo.

    uv run python bench/dial_permission.py --customers 10000 --clients 50 --seconds 10

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service as its own process and a bare nats-py echo as the baseline; this process is
the client. Creates customers in every state (statuses, penalties, verification requirements,
approved CLIs, credit), then asks `customer.query.dial-permission` for random customers, half of
the time with a CLI. Target: >= 10,000/s and p99 < 2 ms.

Then the same while `--cdr-rate` call records per second (default 1,000) stream into CALLS for
random customers, beside the echo measured under the same stream, and a probe that times how
long a call record takes to change a customer's answer (its credit). Targets: >= 0.85 of the
echo, p99 < 2 ms, record -> changed answer p99 < 1 s (product.md section 11).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, closed_loop, process, servers, wait_answering

STATUSES = ["active"] * 6 + ["inactive", "pending_approval", "penalty"]


async def populate(nc: NatsClient, count: int) -> list[str]:
    """Create customers in varied states; return their ids."""
    run = uuid.uuid4().hex[:6]
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()

    async def one(i: int) -> str:
        status = STATUSES[i % len(STATUSES)]
        body = {"customer": {
            "name": f"dial {run} {i}", "status": status, "channels": i % 30, "cps": "5",
            "debit_limit": "0" if i % 11 == 0 else "100000", "currency": "EUR",
            "penalty_until": until if status == "penalty" else None,
            "verification": {"email_required": i % 5 == 0, "mobile_required": i % 7 == 0,
                             "approved_clis_only": i % 3 == 0},
        }}
        reply = json.loads((await nc.request("customer.cmd.create", json.dumps(body).encode(), timeout=30)).data)
        if i % 3 == 0:
            await nc.request("customer.cmd.cli.approve", json.dumps(
                {"customer_id": reply["id"], "number": f"+1415555{i % 10000:04d}"}).encode(), timeout=30)
        return str(reply["id"])

    ids: list[str] = []
    for start in range(0, count, 500):
        ids += await asyncio.gather(*[one(i) for i in range(start, min(count, start + 500))])
    return ids


async def run(nats_url: str, customers: int, clients: int, seconds: float, cdr_rate: int) -> None:
    admin = await bus.connect(nats_url, "provisioner")  # creates the customers, answers the echo
    nc = await bus.connect(nats_url, "switch")  # asks as the switch does: its own identity
    print(f"creating {customers:,} customers ...", file=sys.stderr)
    ids = await populate(admin, customers)
    unknown = [str(uuid.uuid4()) for _ in range(100)]
    rng = random.Random(7)
    bodies = [json.dumps({"customer_id": rng.choice(ids if k % 20 else unknown),
                          "cli": f"+1415555{rng.randrange(10000):04d}" if k % 2 else None}).encode()
              for k in range(50_000)]
    sample = json.loads((await nc.request("customer.query.dial-permission", bodies[1], timeout=5)).data)
    print(f"a sample answer: {json.dumps(sample)}\n")

    async def echo(w: int, i: int) -> bool:
        msg = await admin.request("bench.nats-echo", bodies[(w * 7919 + i) % len(bodies)], timeout=5)
        return bool(msg.data)

    async def dial(w: int, i: int) -> bool:
        msg = await nc.request("customer.query.dial-permission", bodies[(w * 7919 + i) % len(bodies)], timeout=5)
        return msg.data.startswith(b'{"allowed"')

    print(f"{customers:,} customers, {clients} concurrent clients, {seconds:.0f} s each, client in this process\n")
    await closed_loop("warm-up", echo, clients=clients, seconds=1, progress=False)
    await closed_loop("warm-up", dial, clients=clients, seconds=1, progress=False)
    cpu = CpuMeter()
    cpu.start()
    baseline = await closed_loop("nats-py echo (baseline)", echo, clients=clients, seconds=seconds)
    echo_cpu = cpu.per_op_us(baseline.count)
    cpu.start()
    result = await closed_loop("customer.query.dial-permission", dial, clients=clients, seconds=seconds)
    dial_cpu = cpu.per_op_us(result.count)
    print()
    print(baseline.line(), f"\n    {echo_cpu}")
    print(result.line(baseline), f"\n    {dial_cpu}")
    print("\ntarget: >= 10,000/s, p99 < 2 ms")
    if cdr_rate > 0:
        await with_call_records(nc, ids, echo, dial, clients, seconds, cdr_rate)
    await nc.close()
    await admin.close()


def call_record(customer_id: str, charge: str) -> bytes:
    """One `calls.cdr.<customer_id>` message."""
    now = datetime.now(UTC).isoformat()
    return json.dumps({"call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": now,
                       "answered_at": now, "ended_at": now, "duration_s": 30, "billed_duration_s": 30,
                       "charge": charge, "cost": "0.001", "disposition": "answered", "sip_code": 200,
                       "pdd_ms": 80}).encode()


async def stream_records(nc: NatsClient, ids: list[str], rate: int, stop: asyncio.Event) -> int:
    """Publish `rate` call records per second (in 20 ms slices) until stopped; return how many."""
    js = nc.jetstream()
    rng = random.Random(11)
    sent, started = 0, time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        if due > sent:
            acks = [js.publish(f"calls.cdr.{c}", call_record(c, "0.0100"))
                    for c in (rng.choice(ids) for _ in range(due - sent))]
            await asyncio.gather(*acks)
            sent = due
        await asyncio.sleep(0.02)
    return sent


async def probe(nc: NatsClient, customer_id: str, stop: asyncio.Event) -> list[float]:
    """Seconds from a call record published to the customer's changed credit, over and over."""
    delays: list[float] = []
    js = nc.jetstream()
    ask = json.dumps({"customer_id": customer_id}).encode()
    while not stop.is_set():
        before = json.loads((await nc.request("customer.query.dial-permission", ask, timeout=5)).data)["credit"]
        started = time.perf_counter()
        await js.publish(f"calls.cdr.{customer_id}", call_record(customer_id, "0.0100"))
        while time.perf_counter() - started < 5:
            now = json.loads((await nc.request("customer.query.dial-permission", ask, timeout=5)).data)["credit"]
            if now != before:
                delays.append(time.perf_counter() - started)
                break
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.1)
    return delays


async def with_call_records(
    nc: NatsClient, ids: list[str], echo: Any, dial: Any, clients: int, seconds: float, rate: int,
) -> None:
    """The echo and dial permission again, each while `rate` call records/s stream in."""
    print(f"\nwhile {rate:,} call records/s stream into CALLS:\n")
    quiet = asyncio.Event()
    cpu = CpuMeter()
    cpu.start()  # the records alone first: what one costs each process
    alone = asyncio.create_task(stream_records(nc, ids, rate, quiet))
    await asyncio.sleep(seconds / 2)
    quiet.set()
    only = await alone
    await asyncio.sleep(1)  # let the ledger finish them
    print(f"records alone: {only:,} in {seconds / 2:.0f} s, {cpu.per_op_us(only)} (per record)")
    stop = asyncio.Event()
    streaming = asyncio.create_task(stream_records(nc, ids, rate, stop))
    cpu.start()
    baseline = await closed_loop("nats-py echo, records streaming", echo, clients=clients, seconds=seconds)
    echo_cpu = cpu.per_op_us(baseline.count)
    probe_id = ids[1]
    probing = asyncio.create_task(probe(nc, probe_id, stop))
    cpu.start()
    result = await closed_loop("dial-permission, records streaming", dial, clients=clients, seconds=seconds)
    dial_cpu = cpu.per_op_us(result.count)
    stop.set()
    sent, delays = await streaming, await probing
    print()
    print(baseline.line(), f"\n    {echo_cpu} (per request, the records' share included)")
    print(result.line(baseline), f"\n    {dial_cpu} (per request, the records' share included)")
    print(f"call records published: {sent:,} in {2 * seconds:.0f} s ({sent / (2 * seconds):,.0f}/s)")
    ms = sorted(d * 1000 for d in delays) or [float("nan")]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"record -> changed answer over {len(delays)} probes: p50 {ms[len(ms) // 2]:.1f} ms,"
          f" p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
    print("\ntarget: >= 0.85 of the echo, p99 < 2 ms, record -> changed answer p99 < 1,000 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--cdr-rate", type=int, default=1000, help="call records/s in the second run (0: none)")
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url}
        with process([sys.executable, str(Path(__file__).parent / "nats_echo.py")], env), \
                process([sys.executable, "-m", "customer"], env):
            asyncio.run(wait_answering(nats_url, "bench.nats-echo", b"{}"))
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            asyncio.run(run(nats_url, args.customers, args.clients, args.seconds, args.cdr_rate))


if __name__ == "__main__":
    main()
