"""Memory of each service: RSS when idle and its peak under load, beside a bare interpreter.

    uv run python bench/memory.py [--seconds 10] [--contacts 500] [--records 200000]

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the five
services as their own processes and an SMTP server (aiosmtpd, bench/broadcast.py's) as another.
Baseline in the same run: a bare Python process that imports the libraries every service
imports (nats-py, asyncpg, pydantic, structlog, uvloop, prometheus_client), the floor any
service starts from. Then, sampling each process's RSS every 0.2 s:
  idle       all ready, nothing asked, 3 s;
  load       one after another: customer creates over NATS (32 clients), contacts added,
             GET /v1/customers/{id} over HTTP (32 clients, `--seconds`), `--records` call
             records into reporting, an e-mail broadcast to every contact, and a verification
             code e-mailed to each contact;
  after      3 s once the load is over (what the services keep).
Target (architecture.md): each service < 150 MB RSS idle, < 300 MB under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from devtools.embedded import free_port
from nats.aio.client import Client as NatsClient
from reporting.simulator import publish_backlog
from shared.bus import BusSettings
from shared.secrets import Sealer
from shared.streams import CALLS, ensure_streams

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import closed_loop, process, servers, wait_answering
from broadcast import BODY, smtp_stats, wait_received

SERVICES = ["customer", "verification", "notifier", "reporting", "gateway"]
BASELINE = "bare interpreter"
IDLE_TARGET_MB, LOAD_TARGET_MB = 150, 300
FLOOR = "import asyncpg, nats, prometheus_client, pydantic, structlog, uvloop, sys; sys.stdin.read()"
PASSWORD = "bench-password-" + "x" * 8


class Sampler:
    """Peak RSS of each watched process, per phase, from a thread sampling every 0.2 s."""

    def __init__(self, procs: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in procs.items()}
        self.phase = "start"
        self.peaks: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            peaks = self.peaks.setdefault(self.phase, {})
            for name, proc in self.procs.items():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                peaks[name] = max(peaks.get(name, 0), rss)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def enter(self, phase: str) -> None:
        """Count what follows as `phase`."""
        print(f"  phase: {phase}", file=sys.stderr, flush=True)
        self.phase = phase


async def call(nc: NatsClient, subject: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=timeout)).data)
    if "error" in reply:
        raise RuntimeError(f"{subject}: {reply['error']}")
    return reply


async def load(args: argparse.Namespace, sampler: Sampler, nats_url: str, db_url: str, http: str, token: str,
               smtp_port: int) -> None:
    """Every service's share of the load, one after another (progress on stderr)."""
    nc = await bus.connect(nats_url, "provisioner")
    run = uuid.uuid4().hex[:6]
    ids: list[str] = []

    sampler.enter("creates")

    async def create(w: int, i: int) -> bool:
        card = await call(nc, "customer.cmd.create", {"customer": {"name": f"mem {run} {w}-{i}", "currency": "EUR"}})
        ids.append(card["id"])
        return True

    print(f"  creates: {(await closed_loop('creates', create, clients=32, seconds=args.seconds)).line()}",
          file=sys.stderr)
    sampler.enter("contacts")
    contacts: list[tuple[str, str]] = []
    slots = asyncio.Semaphore(8)

    async def add_contact(customer_id: str) -> None:  # one contact per customer: the first
        async with slots:
            card = await call(nc, "customer.cmd.contact.add", {
                "customer_id": customer_id, "password": PASSWORD,
                "contact": {"name": "Ann", "email": f"c-{customer_id}@bench.example"}})
        contacts.append((customer_id, card["contacts"][0]["id"]))

    await asyncio.gather(*(add_contact(c) for c in ids[: args.contacts]))
    print(f"  contacts: {len(contacts):,}", file=sys.stderr)

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        sampler.enter("GETs")

        async def get(w: int, i: int) -> bool:
            async with session.get(f"{http}/v1/customers/{ids[(w * 7919 + i) % len(ids)]}", headers=headers) as r:
                await r.read()
                return r.status == 200

        print(f"  gets: {(await closed_loop('GET /v1/customers/{id}', get, clients=32, seconds=args.seconds)).line()}",
              file=sys.stderr)

        sampler.enter("CDRs")
        js = nc.jetstream()
        await ensure_streams(js, [CALLS])
        await publish_backlog(js, ids[:1000], args.records, days=10, seed=5)
        db = await asyncpg.connect(db_url)
        try:
            while (got := await db.fetchval("SELECT count(*) FROM reporting.call_records")) < args.records:
                print(f"  call records: {got:,}/{args.records:,}", file=sys.stderr, flush=True)
                await asyncio.sleep(1)
        finally:
            await db.close()

        sampler.enter("broadcast")
        await call(nc, "notifier.cmd.settings.email", {"from_address": "noc@carrier.example",
                                                       "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                                                       "security": "none"})
        await nc.request("bench.smtp.reset", b"{}", timeout=5)
        with_contacts = sorted({customer for customer, _ in contacts})
        async with session.post(f"{http}/v1/messages", headers=headers, json={
                "channel": "email", "subject": "Maintenance for {{customer.name}}", "body": BODY,
                "customer_ids": with_contacts}) as r:
            assert r.status == 202, await r.text()
        await wait_received(nc, len(contacts))
        print(f"  broadcast: {len(contacts):,} e-mails", file=sys.stderr)

    sampler.enter("codes")
    await nc.request("bench.smtp.reset", b"{}", timeout=5)
    for customer_id, contact_id in contacts:
        await call(nc, "verification.cmd.request-code", {
            "caller": {"customer_id": customer_id, "contact_id": contact_id}, "channel": "email"})
    await wait_received(nc, len(contacts))
    print(f"  verification codes: {(await smtp_stats(nc))['count']:,} e-mails", file=sys.stderr)
    await nc.close()


LOAD_PHASES = ("creates", "contacts", "GETs", "CDRs", "broadcast", "codes")


def report(sampler: Sampler) -> None:
    """Each process's peak RSS per phase, in MB, against the targets."""
    phases = [p for p in ("idle", *LOAD_PHASES, "after") if p in sampler.peaks]
    print(f"\n{'peak RSS, MB':<16}" + "".join(f"{p:>10}" for p in phases) + "   target")
    for name in [BASELINE, *SERVICES]:
        row = {p: sampler.peaks[p].get(name, 0) / 2**20 for p in phases}
        verdict = "" if name == BASELINE else (
            "met" if row["idle"] < IDLE_TARGET_MB and max(row.values()) < LOAD_TARGET_MB else "NOT MET")
        print(f"{name:<16}" + "".join(f"{row[p]:>10.1f}" for p in phases) + f"   {verdict}")
    floor = sampler.peaks["idle"][BASELINE]
    print("\nidle above the bare interpreter: " + ", ".join(
        f"{s} +{(sampler.peaks['idle'][s] - floor) / 2**20:.0f} MB" for s in SERVICES))
    print(f"targets: idle < {IDLE_TARGET_MB} MB, under load < {LOAD_TARGET_MB} MB; "
          f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="creates, then GETs, for this long each")
    parser.add_argument("--contacts", type=int, default=500, help="contacts: broadcast and code recipients")
    parser.add_argument("--records", type=int, default=200_000, help="call records into reporting")
    args = parser.parse_args()
    token = "pb_bench_" + secrets.token_urlsafe(32)
    http_port, smtp_port = free_port(), free_port()
    py = sys.executable
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url,
               "PATCHBAY_SECRET_KEY": Sealer.new_key(), "PATCHBAY_ADMIN_TOKEN": token,
               "PATCHBAY_HTTP_PORT": str(http_port),
               "PATCHBAY_DATA_DIR": os.environ.get("PATCHBAY_DATA_DIR", f"/tmp/patchbay-bench-{os.getpid()}"),
               # the seeds the embedded NATS trusts (not the fresh data dir's): authenticated NATS
               "PATCHBAY_NATS_CREDENTIALS_DIR": str(BusSettings().credentials_dir())}
        broadcast_py = str(Path(__file__).parent / "broadcast.py")
        floor = subprocess.Popen([py, "-c", FLOOR], stdin=subprocess.PIPE)
        try:
            with process([py, broadcast_py, "--serve-smtp", str(smtp_port), "--nats-url", nats_url], env), \
                    process([py, "-m", "customer"], env) as customer, \
                    process([py, "-m", "verification"], env) as verification, \
                    process([py, "-m", "notifier"], env) as notifier, \
                    process([py, "-m", "reporting"], env) as reporting, \
                    process([py, "-m", "gateway"], env) as gateway:
                pids = {BASELINE: floor.pid, "customer": customer.pid, "verification": verification.pid,
                        "notifier": notifier.pid, "reporting": reporting.pid, "gateway": gateway.pid}
                for subject in ("customer.query.settings.audit", "notifier.query.settings.email",
                                "reporting.query.lag", "verification.cmd.confirm-link", "bench.smtp.stats"):
                    asyncio.run(wait_answering(nats_url, subject, b"{}"))
                asyncio.run(wait_http(f"http://127.0.0.1:{http_port}/readyz"))
                with Sampler(pids) as sampler:
                    sampler.enter("idle")
                    time.sleep(3)
                    asyncio.run(load(args, sampler, nats_url, db_url, f"http://127.0.0.1:{http_port}", token, smtp_port))
                    sampler.enter("after")
                    time.sleep(3)
        finally:
            floor.kill()
            floor.wait()
        report(sampler)


async def wait_http(url: str, timeout: float = 60) -> None:
    """Wait (bounded) until a URL answers 200."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


if __name__ == "__main__":
    main()
