"""Broadcast e-mail: recipients/s from `POST /v1/messages` to a local SMTP server holding them all.

    uv run python bench/broadcast.py --customers 100 --contacts 10 --rounds 2

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL), the
notifier and the gateway as processes, an SMTP server (aiosmtpd) as its own process, and in
this process a stand-in for the customer service: cards with contacts (`customer.query.get`)
and the data keys (`customer.query.data-keys`), the latter answered by the customer service's
own code (its DataKeyStore and route, over its own schema): the notifier asks a contact's key
before it records the delivery (issue 20). Not the real service: adding 1,000 contacts there
hashes 1,000 passwords (argon2id, ~8/s). Baseline in the same run: the SMTP server's own accept
rate, fed by bare aiosmtplib clients over as many connections as the notifier uses. Then each
round: one POST /v1/messages to every contact, timed until the SMTP server has every recipient,
then until the notifier has recorded each as sent; duplicates are counted (there must be none);
CPU µs per recipient of each process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import aiosmtplib
import asyncpg
import httpx
from devtools.embedded import free_port
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, process, servers, wait_answering

BODY = "Dear {{contact.name}},\n\nplanned maintenance on {{customer.name}}'s trunks tonight 02:00-03:00 UTC.\n" * 3


# --- the SMTP server process -------------------------------------------------------------------

def serve_smtp(port: int, nats_url: str) -> None:
    """aiosmtpd on 127.0.0.1:port; `bench.smtp.stats` answers what it accepted (over NATS)."""
    from aiosmtpd.controller import Controller

    seen: dict[str, int] = {}
    stamps: list[float] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            for rcpt in envelope.rcpt_tos:
                seen[rcpt] = seen.get(rcpt, 0) + 1
                stamps.append(time.time())
            return "250 2.0.0 accepted"

    async def main() -> None:
        nc = await bus.connect(nats_url, "provisioner")

        async def stats(msg: Msg) -> None:
            total = sum(seen.values())
            await msg.respond(json.dumps({"count": total, "distinct": len(seen), "last": stamps[-1] if stamps else 0}).encode())

        async def reset(msg: Msg) -> None:
            seen.clear()
            stamps.clear()
            await msg.respond(b"{}")

        await nc.subscribe("bench.smtp.stats", cb=stats)
        await nc.subscribe("bench.smtp.reset", cb=reset)
        await asyncio.Event().wait()

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(main())
    finally:
        controller.stop()


async def smtp_stats(nc: NatsClient) -> dict[str, Any]:
    return dict(json.loads((await nc.request("bench.smtp.stats", b"{}", timeout=5)).data))


async def wait_received(nc: NatsClient, n: int, timeout: float = 300) -> float:
    """Poll the SMTP server until it holds n messages; return the time of the last one."""
    deadline = time.monotonic() + timeout
    while True:
        s = await smtp_stats(nc)
        if s["count"] >= n:
            return float(s["last"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"the SMTP server has {s['count']} of {n} after {timeout} s")
        await asyncio.sleep(0.02)


# --- a customer responder: cards with contacts ----------------------------------------------------

def make_cards(customers: int, contacts: int, run: str) -> dict[str, dict[str, Any]]:
    cards = {}
    for i in range(customers):
        cid = str(uuid.uuid4())
        cards[cid] = {"id": cid, "name": f"Carrier {i}", "deleted": False, "contacts": [
            {"id": str(uuid.uuid4()), "name": f"Contact {i}-{j}", "email": f"c{i}-{j}-{run}@bench.example",
             "mobile": None} for j in range(contacts)]}
    return cards


async def serve_customers(nc: NatsClient, cards: dict[str, dict[str, Any]]) -> None:
    async def get(msg: Msg) -> None:
        found = cards.get(json.loads(msg.data)["customer_id"])
        await msg.respond(json.dumps(found or {"error": {"code": "not_found", "message": "no", "details": []}}).encode())

    await nc.subscribe("customer.query.get", cb=get)
    await nc.flush()


async def serve_data_keys(nc: NatsClient, db_url: str, secret_key: str) -> asyncpg.Pool:
    """`customer.query.data-keys` as the customer service answers it: its store, schema and route."""
    from customer.adapters.data_keys import DataKeyStore
    from customer.application.commands import CustomerCommands
    from customer.bootstrap import MIGRATIONS, PLUMBING, SCHEMA
    from customer.entrypoints.nats_api import QUEUE
    from customer.entrypoints.privacy_api import privacy_routes
    from shared.contracts.privacy import PrivacySubjects
    from shared.migrations import migrate
    from shared.rpc import RpcServer
    from shared.secrets import Sealer
    from shared.service_runtime import open_pool

    await migrate(db_url, SCHEMA, MIGRATIONS)
    pool = await open_pool(PLUMBING, db_url, 4)
    keys = DataKeyStore(pool, Sealer(secret_key))
    # only the data-keys route is served, and it uses no commands
    routes = privacy_routes(commands=cast(CustomerCommands, None), keys=keys)
    await RpcServer(nc, [r for r in routes if r.subject == PrivacySubjects.DATA_KEYS], queue=QUEUE).start()
    return pool


# --- the measurements ---------------------------------------------------------------------------

async def baseline(nc: NatsClient, port: int, n: int, connections: int) -> float:
    """The SMTP server's own accept rate: bare aiosmtplib clients, one message per recipient."""
    await nc.request("bench.smtp.reset", b"{}", timeout=5)

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "noc@carrier.example", "b@bench.example", "Maintenance"
    msg.set_content(BODY)
    raw = msg.as_bytes()  # built once: the baseline measures the server, not the client's MIME code

    async def client(k: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        for i in range(k, n, connections):
            await smtp.sendmail("noc@carrier.example", [f"b{i}@bench.example"], raw)
        await smtp.quit()

    start = time.time()
    await asyncio.gather(*(client(k) for k in range(connections)))
    last = await wait_received(nc, n)
    return n / (last - start)


async def wait_recorded(http: httpx.AsyncClient, message_id: str, n: int, timeout: float = 120) -> float:
    """Poll the message until the notifier has recorded every recipient as sent; return when."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await http.get(f"/v1/messages/{message_id}", params={"limit": 1})
        sent = reply.json()["counts"].get("sent", 0) if reply.status_code == 200 else 0
        if sent >= n:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the notifier recorded {sent} of {n} as sent after {timeout} s (notifier log?)")
        await asyncio.sleep(0.05)


async def broadcast(nc: NatsClient, http: httpx.AsyncClient, ids: list[str], n: int) -> tuple[float, dict[str, Any]]:
    """One POST /v1/messages; recipients per second until the SMTP server has them all."""
    await nc.request("bench.smtp.reset", b"{}", timeout=5)
    start = time.time()
    reply = await http.post("/v1/messages", json={"channel": "email", "subject": "Maintenance for {{customer.name}}",
                                                  "body": BODY, "customer_ids": ids}, timeout=120)
    assert reply.status_code == 202, reply.text
    queued_s = time.time() - start
    last = await wait_received(nc, n)
    stats: dict[str, Any] = {"recorded_s": await wait_recorded(http, reply.json()["message_id"], n) - start}
    await asyncio.sleep(0.5)  # a late duplicate would show up here
    stats |= await smtp_stats(nc)
    stats["queued_s"] = queued_s
    return n / (last - start), stats


def cpu_line(before: dict[str, float], after: dict[str, float], n: int) -> str:
    """CPU µs per recipient of the processes that take part (client: this process, the stand-in)."""
    kinds = ("notifier", "gateway", "postgres", "nats-server", "client")
    return "CPU µs/recipient: " + ", ".join(
        f"{k} {(after.get(k, 0.0) - before.get(k, 0.0)) / n * 1e6:,.0f}" for k in kinds)


async def run(args: argparse.Namespace, nats_url: str, db_url: str, http_port: int, smtp_port: int, token: str,
              secret_key: str, cards: dict[str, dict[str, Any]]) -> None:
    nc = await bus.connect(nats_url, "provisioner")
    await serve_customers(nc, cards)
    pool = await serve_data_keys(nc, db_url, secret_key)
    n = args.customers * args.contacts
    meter = CpuMeter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        deadline = time.monotonic() + 60
        while True:
            try:
                put = await http.put("/v1/settings/email", json={
                    "from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                    "security": "none"})
                if put.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway and notifier never answered")
            await asyncio.sleep(0.2)
        base = await baseline(nc, smtp_port, n, args.workers)
        print(f"baseline: SMTP server accept rate (aiosmtplib, {args.workers} connections): {base:,.0f} msg/s")
        ids = list(cards)
        for r in range(args.rounds):
            before = meter.totals()
            rate, stats = await broadcast(nc, http, ids, n)
            dupes = stats["count"] - stats["distinct"]
            print(f"round {r + 1}: {n} recipients in {n / rate:.2f} s = {rate:,.0f} recipients/s "
                  f"({rate / base:.2f} of the baseline; POST answered in {stats['queued_s']:.2f} s, "
                  f"all recorded sent after {stats['recorded_s']:.2f} s); "
                  f"duplicates: {dupes}, missing: {n - stats['distinct']}")
            print(f"  {cpu_line(before, meter.totals(), n)}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    await nc.close()
    await pool.close()

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--contacts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="notifier SMTP connections (PATCHBAY_EMAIL_WORKERS)")
    parser.add_argument("--serve-smtp", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_smtp:
        serve_smtp(args.serve_smtp, args.nats_url)
        return
    from shared.bus import BusSettings
    from shared.secrets import Sealer

    token = "pb_bench_" + secrets.token_urlsafe(32)
    http_port, smtp_port = free_port(), free_port()
    secret_key = Sealer.new_key()
    with servers() as (nats_url, db_url):
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url, "PATCHBAY_SECRET_KEY": secret_key,
               "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_HTTP_PORT": str(http_port),
               "PATCHBAY_EMAIL_WORKERS": str(args.workers),
               "PATCHBAY_DATA_DIR": os.environ.get("PATCHBAY_DATA_DIR", f"/tmp/patchbay-bench-{os.getpid()}"),
               # the seeds the embedded NATS trusts (not the fresh data dir's): authenticated NATS
               "PATCHBAY_NATS_CREDENTIALS_DIR": str(BusSettings().credentials_dir())}
        py = sys.executable
        with process([py, __file__, "--serve-smtp", str(smtp_port), "--nats-url", nats_url], env), \
                process([py, "-m", "notifier"], env), process([py, "-m", "gateway"], env):
            asyncio.run(wait_answering(nats_url, "notifier.query.settings.email", b"{}"))
            asyncio.run(run(args, nats_url, db_url, http_port, smtp_port, token, secret_key,
                            make_cards(args.customers, args.contacts, uuid.uuid4().hex[:6])))


if __name__ == "__main__":
    main()
