"""Dial permission over NATS from concurrent clients in another process, beside a bare nats-py echo.

    uv run python bench/dial_permission.py --customers 10000 --clients 50 --seconds 10

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service as its own process and a bare nats-py echo as the baseline; this process is
the client. Creates customers in every state (statuses, penalties, verification requirements,
approved CLIs), then asks `customer.query.dial-permission` for random customers, half of the
time with a CLI. Target: >= 10,000/s and p99 < 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

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


async def run(nats_url: str, customers: int, clients: int, seconds: float) -> None:
    nc = await nats.connect(nats_url)
    print(f"creating {customers:,} customers ...", file=sys.stderr)
    ids = await populate(nc, customers)
    unknown = [str(uuid.uuid4()) for _ in range(100)]
    rng = random.Random(7)
    bodies = [json.dumps({"customer_id": rng.choice(ids if k % 20 else unknown),
                          "cli": f"+1415555{rng.randrange(10000):04d}" if k % 2 else None}).encode()
              for k in range(50_000)]
    sample = json.loads((await nc.request("customer.query.dial-permission", bodies[1], timeout=5)).data)
    print(f"a sample answer: {json.dumps(sample)}\n")

    async def echo(w: int, i: int) -> bool:
        msg = await nc.request("bench.nats-echo", bodies[(w * 7919 + i) % len(bodies)], timeout=5)
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
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url}
        with process([sys.executable, str(Path(__file__).parent / "nats_echo.py")], env), \
                process([sys.executable, "-m", "customer"], env):
            asyncio.run(wait_answering(nats_url, "bench.nats-echo", b"{}"))
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            asyncio.run(run(nats_url, args.customers, args.clients, args.seconds))


if __name__ == "__main__":
    main()
