"""Customer commands over NATS from concurrent clients in another process, beside a FastStream echo.

    make bench-commands        (or: uv run python bench/commands.py --clients 32 --seconds 10)

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service as its own process, and a bare FastStream echo as the baseline; this process
is the client. Prints throughput and p50/p99 of the echo, creates, and updates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, closed_loop, process, servers, wait_answering


async def run(nats_url: str, clients: int, seconds: float) -> None:
    nc = await nats.connect(nats_url)
    body = json.dumps({"customer": {"name": "x" * 20, "currency": "EUR", "channels": 10}}).encode()
    run_id = uuid.uuid4().hex[:8]

    async def echo(w: int, i: int) -> bool:
        msg = await nc.request("bench.echo", body, timeout=5)
        return bool(msg.data)

    ids: list[list[str]] = [[] for _ in range(clients)]

    async def create(w: int, i: int) -> bool:
        payload = {"meta": {"command_id": f"{run_id}-{w}-{i}"},
                   "customer": {"name": f"bench {run_id} {w}-{i}", "currency": "EUR", "channels": 10,
                                "tags": ["bench"]}}
        msg = await nc.request("customer.cmd.create", json.dumps(payload).encode(), timeout=5)
        reply = json.loads(msg.data)
        if "id" in reply:
            ids[w].append(reply["id"])
        return "id" in reply

    async def update(w: int, i: int) -> bool:
        mine = ids[w]
        if not mine:
            return False
        payload = {"customer_id": mine[i % len(mine)], "changes": {"channels": i % 50 + 1, "notes": f"n{i}"}}
        msg = await nc.request("customer.cmd.update", json.dumps(payload).encode(), timeout=5)
        return b'"error"' not in msg.data[:10]

    print(f"clients {clients}, {seconds:.0f} s each, client in this process, services in others\n")
    await closed_loop("warm-up", echo, clients=clients, seconds=1, progress=False)
    cpu = CpuMeter()
    results = []
    for name, op in (("FastStream echo (baseline)", echo), ("customer.cmd.create", create),
                     ("customer.cmd.update", update)):
        cpu.start()
        result = await closed_loop(name, op, clients=clients, seconds=seconds)
        results.append((result, cpu.per_op_us(result.count)))
    print()
    baseline = results[0][0]
    for result, cpu_line in results:
        print(result.line(None if result is baseline else baseline))
        print(f"    {cpu_line}")
    print("\ntarget: >= 3,000/s, p99 < 20 ms, >= 0.6 of the echo")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url}
        with process([sys.executable, str(Path(__file__).parent / "echo_service.py")], env), \
                process([sys.executable, *(os.environ.get("CUSTOMER_CMD", "-m customer").split())], env):
            asyncio.run(wait_answering(nats_url, "bench.echo", b"{}"))
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            asyncio.run(run(nats_url, args.clients, args.seconds))


if __name__ == "__main__":
    main()
