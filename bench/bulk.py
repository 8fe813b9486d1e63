"""Bulk upload of a 50,000-row CSV through the gateway, beside single creates over NATS in the same run.

    uv run --no-sync python bench/bulk.py [--rows 50000] [--clients 32] [--seconds 10]

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
customer service and the gateway as their own processes. The baseline is
`customer.cmd.create` over NATS from `--clients` concurrent clients in this process; then
the CSV is uploaded with the command line (`python -m gateway.bulk_cli`, all_or_nothing),
while the peak RSS of the gateway and the customer service is sampled.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import closed_loop, process, servers, wait_answering

COLUMNS = ["name", "currency", "status", "debit_limit", "tax", "channels", "cps", "portal_access",
           "address.city", "address.country", "tags", "notes"]


def write_csv(path: Path, rows: int, run_id: str) -> None:
    """A realistic upload: every row valid, several columns, a few hundred bytes each."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow([f"Bulk {run_id} customer {i}", ("EUR", "USD", "GBP")[i % 3], "active",
                             f"{(i % 200) - 100}.25", "19", str(i % 64), "2.5", "true", "Leeds", "GB",
                             "bulk;bench", f"imported by bench/bulk.py, row {i}"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def single_creates(nats_url: str, clients: int, seconds: float) -> float:
    """Creates per second over NATS, closed loop."""
    nc = await bus.connect(nats_url, "provisioner")
    run_id = uuid.uuid4().hex[:8]

    async def create(w: int, i: int) -> bool:
        body = {"customer": {"name": f"single {run_id} {w}-{i}", "currency": "EUR", "channels": 10,
                             "tags": ["bench"], "address": {"city": "Leeds", "country": "GB"}}}
        msg = await nc.request("customer.cmd.create", json.dumps(body).encode(), timeout=10)
        return b'"error"' not in msg.data[:10]

    result = await closed_loop("customer.cmd.create", create, clients=clients, seconds=seconds)
    await nc.close()
    print(result.line())
    return result.rate


async def events_in_store(db_url: str) -> int:
    """Events committed by the customer service (each one goes to CUSTOMER_EVENTS)."""
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM customer.events"))
    finally:
        await conn.close()


async def stream_count(nats_url: str) -> int:
    """Messages in CUSTOMER_EVENTS."""
    nc = await bus.connect(nats_url, "provisioner")
    try:
        return int((await nc.jetstream().stream_info("CUSTOMER_EVENTS")).state.messages)
    finally:
        await nc.close()


def wait_published(nats_url: str, expected: int, timeout: float = 120) -> float:
    """Seconds until CUSTOMER_EVENTS holds `expected` messages (the relay caught up)."""
    t0 = time.perf_counter()
    while asyncio.run(stream_count(nats_url)) < expected:
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"the relay did not publish {expected} events in {timeout:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - t0


def peak_rss_while(proc: subprocess.Popen[bytes], watched: dict[str, psutil.Process]) -> dict[str, float]:
    """Sample the RSS (MB) of the watched processes until `proc` exits; the peaks."""
    peaks = {name: p.memory_info().rss / 2**20 for name, p in watched.items()}
    while proc.poll() is None:
        for name, p in watched.items():
            peaks[name] = max(peaks[name], p.memory_info().rss / 2**20)
        time.sleep(0.1)
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    token = "pb_bench_" + secrets.token_urlsafe(32)
    port = free_port()
    with servers() as (nats_url, db_url), tempfile.TemporaryDirectory(prefix="patchbay-bulk-") as tmp:
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url}
        gateway_env = {**env, "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_HTTP_PORT": str(port)}
        with process([sys.executable, "-m", "customer"], env) as customer, \
                process([sys.executable, "-m", "gateway"], gateway_env) as gateway:
            asyncio.run(wait_answering(nats_url, "customer.query.settings.audit", b"{}"))
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            watched = {"gateway": psutil.Process(gateway.pid), "customer": psutil.Process(customer.pid)}
            idle = {name: p.memory_info().rss / 2**20 for name, p in watched.items()}
            print(f"single creates: {args.clients} clients, {args.seconds:.0f} s, over NATS\n")
            single = asyncio.run(single_creates(nats_url, args.clients, args.seconds))
            path = Path(tmp) / "customers.csv"
            write_csv(path, args.rows, uuid.uuid4().hex[:8])
            size_mb = path.stat().st_size / 2**20
            print(f"\nbulk upload: {args.rows:,} rows, {size_mb:.1f} MB CSV, all_or_nothing, through the gateway")
            command = [sys.executable, "-m", "gateway.bulk_cli", str(path), "--url", url, "--token", token,
                       "--errors-only", "--quiet"]
            t0 = time.perf_counter()
            cli = subprocess.Popen(command, env={**os.environ, "PATCHBAY_LOG_LEVEL": "WARNING"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            peaks = peak_rss_while(cli, watched)
            elapsed = time.perf_counter() - t0
            out = cli.stdout.read().decode() if cli.stdout else ""
            print("  " + out.strip().replace("\n", "\n  "))
            if cli.returncode != 0:
                raise SystemExit(f"the upload failed (exit {cli.returncode})")
            rate = args.rows / elapsed
            lag = wait_published(nats_url, asyncio.run(events_in_store(db_url)))
            print(f"\n{'customer.cmd.create over NATS':<34} {single:>9,.0f}/s")
            print(f"{'bulk upload (CLI -> gateway)':<34} {rate:>9,.0f} rows/s  ({elapsed:.1f} s)"
                  f"  ratio {rate / single:.1f}x single creates")
            print(f"  every event of the upload on CUSTOMER_EVENTS {lag:.1f} s after the answer")
            for name in watched:
                print(f"  RSS {name}: idle {idle[name]:.0f} MB, peak during upload {peaks[name]:.0f} MB")


if __name__ == "__main__":
    main()
