"""The HTTP API under load: creates, updates, reads and the board, beside a bare FastAPI echo.

    uv run python bench/gateway.py --clients 32 --seconds 10 --board-customers 100000

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service and the gateway as their own processes, and a bare FastAPI app under
uvicorn as the baseline; this process is the HTTP client (aiohttp). The same create and update
sent straight over NATS (signed as the gateway signs them) are the second baseline: POST and PATCH
print their ratio to it, and every phase the CPU microseconds each process spent per request.
Targets (architecture.md, issue 21): gateway CPU <= 250 µs per POST/PATCH, POST/PATCH >= 0.6 of
the NATS rate, GET /v1/customers/{id} >= 2,500 req/s; the board over 100k customers p99 < 50 ms.

    uv run python bench/gateway.py --seconds 10 --board-customers 0 --phases echo,nats,post,patch,get
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from pathlib import Path

import aiohttp
import httpx

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, Result, closed_loop, process, servers, wait_answering
from devtools.embedded import free_port


async def wait_http(url: str, timeout: float = 60) -> None:
    """Wait (bounded) until a URL answers 200."""
    async with httpx.AsyncClient() as client:
        for _ in range(int(timeout * 10)):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


async def seed(nats_url: str, count: int) -> None:
    """Create `count` customers over NATS, many at once (progress on stderr)."""
    nc = await bus.connect(nats_url, "provisioner")
    run_id = uuid.uuid4().hex[:6]
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        for i in range(w, count, 64):
            body = {"customer": {"name": f"seed {run_id} {i:06d}", "currency": ["EUR", "USD", "GBP"][i % 3],
                                 "tags": [f"t{i % 20}"], "channels": i % 100,
                                 "address": {"country": ["DE", "FR", "GB", "US"][i % 4]}}}
            await nc.request("customer.cmd.create", json.dumps(body).encode(), timeout=30)
            done += 1
            if done % 10_000 == 0:
                print(f"  seeded {done:,}/{count:,}", file=sys.stderr, flush=True)

    await asyncio.gather(*[worker(w) for w in range(64)])
    await nc.close()


PHASES = ("echo", "nats", "post", "patch", "get", "board")


async def settle(cpu: CpuMeter, timeout: float = 20) -> None:
    """Wait (bounded) until the services are idle, so no phase pays for the last one's backlog."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        before = cpu.totals()
        await asyncio.sleep(0.5)
        after = cpu.totals()
        busy = sum(after.get(k, 0.0) - v for k, v in before.items() if k != "client") / 0.5
        if busy < 0.15:  # cores
            return


async def run(http: str, echo: str, nats_url: str, token: str, clients: int, seconds: float,
              phases: tuple[str, ...] = PHASES) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=clients * 2)
    nc = await bus.connect(nats_url, "gateway")  # commands as the gateway sends them: signed, an actor named
    actor = {"kind": "operator", "id": "bench", "name": "bench"}
    async with aiohttp.ClientSession(connector=connector) as session:
        run_id = uuid.uuid4().hex[:8]
        ids: list[list[str]] = [[] for _ in range(clients)]
        nats_ids: list[list[str]] = [[] for _ in range(clients)]

        async def nats_create(w: int, i: int) -> bool:
            payload = {"meta": {"actor": actor}, "customer": {"name": f"nats {run_id} {w}-{i}", "currency": "EUR"}}
            reply = json.loads((await nc.request("customer.cmd.create", json.dumps(payload).encode(), timeout=5)).data)
            if "id" in reply:
                nats_ids[w].append(reply["id"])
            return "id" in reply

        async def nats_update(w: int, i: int) -> bool:
            mine = nats_ids[w]
            payload = {"meta": {"actor": actor}, "customer_id": mine[i % len(mine)], "changes": {"channels": i % 40}}
            msg = await nc.request("customer.cmd.update", json.dumps(payload).encode(), timeout=5)
            return b'"error"' not in msg.data[:10]

        async def call(method: str, url: str, **kw: object) -> tuple[int, bytes]:
            async with session.request(method, url, headers=headers, **kw) as r:  # type: ignore[arg-type]
                return r.status, await r.read()

        async def echo_op(w: int, i: int) -> bool:
            return (await call("GET", f"{echo}/echo/{i}"))[0] == 200

        async def create(w: int, i: int) -> bool:
            status, body = await call("POST", f"{http}/v1/customers",
                                      json={"name": f"http {run_id} {w}-{i}", "currency": "EUR"})
            if status == 201:
                ids[w].append(json.loads(body)["id"])
            return status == 201

        async def update(w: int, i: int) -> bool:
            mine = ids[w]
            url = f"{http}/v1/customers/{mine[i % len(mine)]}"
            return (await call("PATCH", url, json={"channels": i % 40}))[0] == 200

        async def get(w: int, i: int) -> bool:
            mine = ids[w]
            return (await call("GET", f"{http}/v1/customers/{mine[i % len(mine)]}"))[0] == 200

        async def board(w: int, i: int) -> bool:
            params = [{"limit": "50"}, {"limit": "50", "sort": "-created_at"}, {"limit": "50", "tag": f"t{i % 20}"},
                      {"limit": "50", "country": "DE", "currency": "EUR"}, {"limit": "50", "q": f"{i % 1000:03d}"}]
            return (await call("GET", f"{http}/v1/customers", params=params[i % len(params)]))[0] == 200

        await closed_loop("warm-up", echo_op, clients=clients, seconds=1, progress=False)
        plan = {"echo": [("bare FastAPI echo (baseline)", echo_op)],
                "nats": [("NATS customer.cmd.create", nats_create), ("NATS customer.cmd.update", nats_update)],
                "post": [("POST /v1/customers", create)], "patch": [("PATCH /v1/customers/{id}", update)],
                "get": [("GET /v1/customers/{id}", get)], "board": [("GET /v1/customers (board)", board)]}
        if ("patch" in phases or "get" in phases) and "post" not in phases:
            phases = ("post", *phases)  # PATCH and GET need the cards POST made
        cpu = CpuMeter()
        results: dict[str, tuple[Result, str]] = {}
        for phase in PHASES:
            for name, op in plan[phase] if phase in phases else ():
                await settle(cpu)
                cpu.start()
                result = await closed_loop(name, op, clients=clients, seconds=seconds)
                results[name] = (result, cpu.per_op_us(result.count))
        await nc.close()
    print()
    baseline = results.get("bare FastAPI echo (baseline)", (None, ""))[0]
    versus = {"POST /v1/customers": "NATS customer.cmd.create", "PATCH /v1/customers/{id}": "NATS customer.cmd.update"}
    for name, (result, cpu_line) in results.items():
        print(result.line(None if result is baseline else baseline))
        if name in versus and versus[name] in results:
            nats = results[versus[name]][0]
            print(f"    ratio {result.rate / nats.rate:.2f} of {nats.name} ({nats.rate:,.0f}/s) in this run")
        print(f"    {cpu_line}")
        if name == "GET /v1/customers (board)":
            print(f"    target p99 < 50 ms at {clients} clients: {'met' if result.pct(0.99) < 50 else 'not met'}")
    print("\ntargets: gateway CPU <= 250 µs per POST/PATCH; POST/PATCH >= 0.6 of NATS;"
          " GET /v1/customers/{id} >= 2,500 req/s; board p99 < 50 ms over 100k customers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--board-customers", type=int, default=100_000)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {','.join(PHASES)}")
    args = parser.parse_args()
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    token = "pb_bench_" + secrets.token_urlsafe(32)
    port, echo_port = free_port(), free_port()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url,
               "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_HTTP_PORT": str(port),
               "PATCHBAY_SECRET_KEY": "", "ECHO_PORT": str(echo_port)}
        with process([sys.executable, "-m", "customer"], env) as customer, \
                process([sys.executable, "-m", "gateway"], env) as gateway, \
                process([sys.executable, str(Path(__file__).parent / "http_echo.py")], env):
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            asyncio.run(wait_http(f"http://127.0.0.1:{port}/readyz"))
            asyncio.run(wait_http(f"http://127.0.0.1:{echo_port}/echo/x"))
            if args.board_customers:
                print(f"seeding {args.board_customers:,} customers for the board ...", file=sys.stderr)
                asyncio.run(seed(nats_url, args.board_customers))
            print(f"  gateway pid {gateway.pid}, customer pid {customer.pid}", file=sys.stderr, flush=True)
            asyncio.run(run(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{echo_port}", nats_url, token,
                            args.clients, args.seconds, phases))


if __name__ == "__main__":
    main()
