"""The HTTP API under load: creates, updates, reads and the board, beside a bare FastAPI echo.

    uv run python bench/gateway.py --clients 32 --seconds 10 --board-customers 100000

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service and the gateway as their own processes, and a bare FastAPI app under
uvicorn as the baseline; this process is the HTTP client (httpx). Targets (architecture.md):
GET /v1/customers/{id} >= 2,000 req/s; the board over 100k customers p99 < 50 ms.
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
from _harness import CpuMeter, closed_loop, process, servers, wait_answering
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


async def run(http: str, echo: str, token: str, clients: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        run_id = uuid.uuid4().hex[:8]
        ids: list[list[str]] = [[] for _ in range(clients)]

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
        cpu = CpuMeter()
        results = []
        for name, op in (("bare FastAPI echo (baseline)", echo_op), ("POST /v1/customers", create),
                         ("PATCH /v1/customers/{id}", update), ("GET /v1/customers/{id}", get),
                         ("GET /v1/customers (board)", board)):
            cpu.start()
            result = await closed_loop(name, op, clients=clients, seconds=seconds)
            results.append((result, cpu.per_op_us(result.count)))
        print()
        baseline = results[0][0]
        for result, cpu_line in results:
            print(result.line(None if result is baseline else baseline))
            print(f"    {cpu_line}")
        print("\ntargets: GET /v1/customers/{id} >= 2,000 req/s; board p99 < 50 ms over 100k customers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--board-customers", type=int, default=100_000)
    args = parser.parse_args()
    token = "pb_bench_" + secrets.token_urlsafe(32)
    port, echo_port = free_port(), free_port()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url,
               "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_HTTP_PORT": str(port),
               "PATCHBAY_SECRET_KEY": "", "ECHO_PORT": str(echo_port)}
        with process([sys.executable, "-m", "customer"], env), \
                process([sys.executable, "-m", "gateway"], env), \
                process([sys.executable, str(Path(__file__).parent / "http_echo.py")], env):
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            asyncio.run(wait_http(f"http://127.0.0.1:{port}/readyz"))
            asyncio.run(wait_http(f"http://127.0.0.1:{echo_port}/echo/x"))
            if args.board_customers:
                print(f"seeding {args.board_customers:,} customers for the board ...", file=sys.stderr)
                asyncio.run(seed(nats_url, args.board_customers))
            asyncio.run(run(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{echo_port}", token,
                            args.clients, args.seconds))


if __name__ == "__main__":
    main()
