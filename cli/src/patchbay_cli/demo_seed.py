"""The demo's seed (`PATCHBAY_DEMO=1 make run`): a believable carrier, made once per demo data dir.

The seed goes through the public doors only: the gateway's HTTP API (customers, contacts, the
number range and blocks, payments, an alert rule on prepaid credit) and, for 30 days of call
history, call records on the CALLS stream published as the `switch` identity. It runs once per
data dir (`demo/customers.json` records it); the switch (patchbay_cli.demo_switch) seeds first,
then reads that file.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from nats.js import JetStreamContext
from reporting.simulator import publish_backlog

log = structlog.get_logger()

DRY_NAME = "Dry Gulch Prepaid"
SEED_CONCURRENCY = 6  # customers seeded at once

COMPANIES = [
    ("Nordwind Telecom", "EUR", "DE", "Hamburg"), ("Alpine Voice", "CHF", "CH", "Zurich"),
    ("Thames Connect", "GBP", "GB", "London"), ("Liberty Wholesale", "USD", "US", "New York"),
    ("Rhein Carrier", "EUR", "DE", "Cologne"), ("Baltic Bridge", "EUR", "LT", "Vilnius"),
    ("Pacific Transit", "USD", "US", "Seattle"), ("Gulf Stream Calls", "USD", "US", "Houston"),
    ("Seine Telecom", "EUR", "FR", "Paris"), ("Iberia Routes", "EUR", "ES", "Madrid"),
    ("Danube Networks", "EUR", "AT", "Vienna"), ("Highland Tel", "GBP", "GB", "Edinburgh"),
    ("Maple Leaf Voice", "CAD", "CA", "Toronto"), ("Kiwi Link", "NZD", "NZ", "Auckland"),
    ("Outback Carriers", "AUD", "AU", "Sydney"), ("Fjord Telecom", "NOK", "NO", "Bergen"),
    ("Vistula Voice", "PLN", "PL", "Warsaw"), ("Tiber Telecom", "EUR", "IT", "Rome"),
    ("Liffey Connect", "EUR", "IE", "Dublin"), ("Amstel Routes", "EUR", "NL", "Amsterdam"),
    ("Bosphorus Link", "EUR", "TR", "Istanbul"), ("Sakura Voice", "JPY", "JP", "Osaka"),
    ("Hudson Dialer", "USD", "US", "Albany"), ("Golden Gate VoIP", "USD", "US", "San Francisco"),
    ("Lone Star Calls", "USD", "US", "Austin"), ("Cedar Telecom", "USD", "US", "Denver"),
    ("Elbe Digital", "EUR", "DE", "Dresden"), ("Loire Lines", "EUR", "FR", "Nantes"),
    ("Vltava Voice", "CZK", "CZ", "Prague"), ("Tagus Telecom", "EUR", "PT", "Lisbon"),
    ("Oresund Calls", "SEK", "SE", "Malmo"), ("Aegean Routes", "EUR", "GR", "Athens"),
    ("Mersey Mobile", "GBP", "GB", "Liverpool"), ("Prairie Voice", "USD", "US", "Omaha"),
]
STATUSES = ["active"] * 7 + ["inactive", "pending_approval"]
TAGS = ["wholesale", "retail", "premium", "call-center", "emea", "americas", "apac", "trial"]


def _customer(rng: random.Random, i: int, name: str, currency: str, country: str,
              city: str) -> dict[str, Any]:
    """One believable card: mostly active, some prepaid, some postpaid with a debit limit."""
    status = "active" if i < 4 else rng.choice(STATUSES)
    prepaid = i % 3 == 0
    return {
        "name": name, "currency": currency, "status": status,
        "debit_limit": "0" if prepaid else str(rng.choice([250, 500, 1000, 2500, 5000])),
        "daily_spend_limit": str(rng.choice([0, 0, 100, 250])),
        "channels": rng.choice([30, 60, 120, 240]), "cps": str(rng.choice([5, 10, 20])),
        "tax": rng.choice(["0", "19", "20"]), "invoice_schedule": rng.choice(["none", "monthly", "weekly"]),
        "tags": rng.sample(TAGS, rng.randint(1, 3)) + (["prepaid"] if prepaid else ["postpaid"]),
        "website": f"https://{name.lower().replace(' ', '-')}.example",
        "address": {"line1": f"{rng.randint(1, 200)} Harbour Street", "city": city, "country": country,
                    "postcode": str(rng.randint(10000, 99999))},
        "notes": "demo customer",
    }


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any],
                method: str = "POST") -> dict[str, Any]:
    """One call of the seed: retried while the stack is busy (429, 5xx, timeouts), a few times."""
    for attempt in range(6):
        try:
            reply = await api.request(method, path, json=body)
        except httpx.TransportError as exc:
            log.warning("demo seed retrying", path=path, error=type(exc).__name__)
        else:
            if reply.status_code < 400:
                return dict(reply.json()) if reply.content else {}
            if reply.status_code != 429 and reply.status_code < 500:
                raise SeedConflict(reply.status_code, f"demo seed: {method} {path} answered "
                                   f"{reply.status_code}: {reply.text[:300]}")
            log.warning("demo seed retrying", path=path, status=reply.status_code)
        await asyncio.sleep(0.5 * 2**attempt)
    raise RuntimeError(f"demo seed: {method} {path} failed six times; is the gateway up?")


class SeedConflict(RuntimeError):
    """A 4xx answer (409: made by an earlier, interrupted seed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """POST, taking a 409 as "an interrupted seed already made it" (None)."""
    try:
        return await _post(api, path, body)
    except SeedConflict as exc:
        if exc.status != 409:
            raise
        return None


async def _customer_named(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create the card, or find the one an interrupted seed made (names are unique)."""
    card = await _create(api, path, body)
    if card is not None:
        return card
    found = (await api.get("/v1/customers", params={"q": body["name"], "limit": 10})).json()["items"]
    return next(c for c in found if c["name"].lower() == body["name"].lower())


async def _seed_one(api: httpx.AsyncClient, i: int, gate: asyncio.Semaphore) -> dict[str, Any]:
    """One customer with its contacts, maybe a number block, and a top-up when prepaid."""
    name, currency, country, city = COMPANIES[i]
    rng = random.Random(22 * 1000 + i)
    async with gate:
        body = _customer(rng, i, name, currency, country, city)
        card = await _customer_named(api, "/v1/customers", body)
        slug = name.lower().replace(" ", "")
        for role, who in (("general", "Ops Desk"), ("billing", "Accounts"))[: 1 + i % 2]:
            await _create(api, f"/v1/customers/{card['id']}/contacts", {
                "name": f"{who} {name}", "email": f"{role}.{i}@{slug}.example", "contact_type": role,
                "mobile": f"+4915{rng.randint(10**8, 10**9 - 1)}"})
        if i % 4 == 0 and card.get("version", 1) == 1:
            await _post(api, f"/v1/customers/{card['id']}/number-blocks", {})
        if body["debit_limit"] == "0":
            amount = Decimal(rng.choice([200, 500, 1000]))
            await _post(api, f"/v1/customers/{card['id']}/payments", {
                "amount": str(amount), "currency": currency, "method": "bank_transfer",
                "reference": f"demo-{i}-topup", "description": "prepaid top-up"})
    return {"id": card["id"], "name": name, "currency": currency, "active": body["status"] == "active",
            "weight": 1}


async def seed(http: str, token: str, data_dir: Path, js: JetStreamContext, *,
               calls_per_customer: int = 120) -> Path:
    """Seed the carrier once per data dir; return the customers file the switch reads."""
    target = data_dir / "demo" / "customers.json"
    if target.is_file():
        log.info("demo already seeded", customers=str(target))
        return target
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=http, headers=headers, timeout=30) as api:
        await _post(api, "/v1/settings/number-range", {"start": 4930100000, "block_size": 100,
                                                      "end": 4930199999}, "PUT")
        # an alert on the prepaid customers' credit, made first (loaded before any call): the dry
        # customer trips it (Alerts page, its card's latest alert)
        if not (await api.get("/v1/alerts")).json().get("items"):
            await _post(api, "/v1/alerts", {
                "name": "Prepaid credit running out", "scope": {"tag": "prepaid"}, "area": "available_credit",
                "operator": "lt", "threshold": "1", "reset_threshold": "5", "level": "warning",
                "actions": {"email_contacts": True}})
        gate = asyncio.Semaphore(SEED_CONCURRENCY)
        customers = list(await asyncio.gather(*(_seed_one(api, i, gate) for i in range(len(COMPANIES)))))
        dry = await _customer_named(api, "/v1/customers", {
            "name": DRY_NAME, "currency": "USD", "debit_limit": "0", "channels": 10, "cps": "2",
            "tags": ["prepaid", "retail", "trial"],
            "notes": "demo: a prepaid customer with a small top-up; the switch soon finds it dry"})
        await _post(api, f"/v1/customers/{dry['id']}/payments", {
            "amount": "0.10", "currency": "USD", "method": "card", "reference": "demo-dry-topup",
            "description": "a small top-up"})
        customers.append({"id": dry["id"], "name": DRY_NAME, "currency": "USD", "active": True,
                          "weight": 6, "dry": True})
    history = [c["id"] for c in customers if not c.get("dry")]
    calls_per_customer = int(os.environ.get("PATCHBAY_DEMO_HISTORY_CALLS", calls_per_customer))
    published = await publish_backlog(js, history, calls_per_customer * len(history), days=30, seed=22)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"customers": customers}, indent=1))
    log.info("demo seeded", customers=len(customers), call_records=published, dry_customer=dry["id"])
    return target
