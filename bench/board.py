"""The board over NATS (no gateway): PostgreSQL and customer-service CPU per query, by query shape.

    uv run python bench/board.py --customers 100000 --clients 32 --seconds 10

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL) and the
customer service; seeds `--customers` as bench/gateway.py does, then `--burst` creates whose
names sort first and as many updates (what gateway.py's POST and PATCH phases leave before its
board phase), then runs gateway.py's five board queries from `--clients` clients, mixed and one
shape at a time. The baseline in the same run is GET by id over NATS. CPU per query comes from
/proc (psutil) of the postgres processes and the customer service: robust on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import closed_loop, process, servers, wait_answering
from gateway import seed

SHAPES: list[tuple[str, Any]] = [
    ("name, no filter", lambda i: {"limit": 50}),
    ("-created_at, no filter", lambda i: {"limit": 50, "sort": "-created_at"}),
    ("tag", lambda i: {"limit": 50, "tag": [f"t{i % 20}"]}),
    ("country + currency", lambda i: {"limit": 50, "country": ["DE"], "currency": ["EUR"]}),
    ("q (word prefix)", lambda i: {"limit": 50, "q": f"{i % 1000:03d}"}),
]


def postmaster(db_url: str) -> psutil.Process:
    """The postgres server listening on the database URL's port (not another one on this host)."""
    port = db_url.rsplit(":", 1)[1].split("/")[0]
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-p" in cmd and cmd[cmd.index("-p") + 1] == port:
            return proc
    raise RuntimeError(f"no postgres listening on {port} here")


def cpu_seconds(server: psutil.Process, service_pid: int) -> dict[str, float]:
    """CPU seconds of this server's backends serving connections, of its background processes
    (autovacuum, checkpointer, WAL writer: they come when they like, in any phase), and of the
    customer service."""
    out = {"postgres queries": 0.0, "postgres background": 0.0, "customer": 0.0}
    for proc in [*server.children(), psutil.Process(service_pid)]:
        try:
            times = proc.cpu_times()
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if proc.pid == service_pid:
            out["customer"] += times.user + times.system
        else:  # a backend's title: "postgres: <user> <database> <host>(<port>) <state>"
            kind = "queries" if "(" in title and ")" in title else "background"
            out[f"postgres {kind}"] += times.user + times.system
    return out


async def burst(nats_url: str, count: int, server: psutil.Process, service_pid: int) -> None:
    """`count` creates named to sort first, then one update of each (32 at a time), with the CPU
    per command: what the board's indexes and triggers cost the writes."""
    nc = await bus.connect(nats_url, "provisioner")
    run_id, ids = uuid.uuid4().hex[:8], []

    async def creates(w: int) -> None:
        for i in range(w, count, 32):
            body = {"customer": {"name": f"http {run_id} {w}-{i}", "currency": "EUR"}}
            reply = await nc.request("customer.cmd.create", json.dumps(body).encode(), timeout=30)
            ids.append(json.loads(reply.data)["id"])

    async def updates(w: int) -> None:
        for i in range(w, len(ids), 32):
            body = {"customer_id": ids[i], "changes": {"channels": i % 40}}
            await nc.request("customer.cmd.update", json.dumps(body).encode(), timeout=30)

    for name, phase in (("creates", creates), ("updates", updates)):
        before, t0 = cpu_seconds(server, service_pid), time.monotonic()
        await asyncio.gather(*[phase(w) for w in range(32)])
        after, elapsed = cpu_seconds(server, service_pid), time.monotonic() - t0
        per = ", ".join(f"{k} {(after[k] - before[k]) / count * 1e6:,.0f}" for k in after)
        print(f"{name} over NATS (the burst): {count / elapsed:,.0f}/s\n    CPU µs/command: {per}", flush=True)
    await nc.close()


async def run(nats_url: str, server: psutil.Process, service_pid: int, clients: int, seconds: float) -> None:
    nc = await bus.connect(nats_url, "gateway")
    some = json.loads((await nc.request("customer.query.list", b'{"limit": 200}', timeout=30)).data)
    ids = [c["id"] for c in some["items"]]

    async def get(w: int, i: int) -> bool:
        body = json.dumps({"customer_id": ids[(w * 7 + i) % len(ids)]}).encode()
        return b'"id"' in (await nc.request("customer.query.get", body, timeout=30)).data

    def board(shape: int | None) -> Any:
        async def op(w: int, i: int) -> bool:
            query = SHAPES[i % len(SHAPES) if shape is None else shape][1](i)
            reply = await nc.request("customer.query.list", json.dumps(query).encode(), timeout=30)
            return b'"items"' in reply.data
        return op

    phases = [("GET by id over NATS (baseline)", get), ("board, the five shapes mixed", board(None))]
    phases += [(f"board: {name}", board(k)) for k, (name, _) in enumerate(SHAPES)]
    lines = []
    for name, op in phases:
        before = cpu_seconds(server, service_pid)
        result = await closed_loop(name, op, clients=clients, seconds=seconds, progress=False)
        after = cpu_seconds(server, service_pid)
        per = {k: (after[k] - before[k]) / max(result.count, 1) * 1e6 for k in after}
        lines.append(f"{result.line()}\n    CPU µs/query: " + ", ".join(f"{k} {v:,.0f}" for k, v in per.items()))
        print(lines[-1], flush=True)
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=14_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url, "PATCHBAY_SECRET_KEY": ""}
        with process([sys.executable, "-m", "customer"], env) as service:
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            print(f"seeding {args.customers:,} customers, then {args.burst:,} creates and updates ...",
                  file=sys.stderr)
            asyncio.run(seed(nats_url, args.customers))
            server = postmaster(db_url)
            asyncio.run(burst(nats_url, args.burst, server, service.pid))
            asyncio.run(run(nats_url, server, service.pid, args.clients, args.seconds))
    print("\ntarget (through the gateway): board p99 < 50 ms at 32 clients over 100k customers")


if __name__ == "__main__":
    main()
