"""Money through the gateway: payments (HTTP), balance, credit in dial permission, PayPal IPN.

The customer service runs in-process on the gateway's NATS; PayPal's verify endpoint is a
local aiohttp server that checks it got `cmd=_notify-validate&` + the IPN's bytes.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qsl, quote_from_bytes

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for

from shared import bus

pytestmark = pytest.mark.servers
PREFIX = b"cmd=_notify-validate&"
RECEIVER = "shop@carrier.example"


@dataclass
class FakePaypal:
    """PayPal's verify endpoint: answers per txn_id from a script, keeps every body it got."""

    script: dict[str, list[Any]] = field(default_factory=dict)  # txn_id -> answers, in order
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""

    async def verify(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        if not body.startswith(PREFIX):
            return web.Response(text="INVALID")
        txn = dict(parse_qsl(body[len(PREFIX) :].decode("latin-1"))).get("txn_id", "")
        answers = self.script.get(txn) or ["VERIFIED"]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == "slow":
            await asyncio.sleep(3)
            return web.Response(text="VERIFIED")
        if isinstance(answer, int):
            return web.Response(status=answer, text="error")
        return web.Response(text=answer)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def paypal() -> AsyncIterator[FakePaypal]:
    fake = FakePaypal()
    app = web.Application()
    app.router.add_post("/cgi-bin/webscr", fake.verify)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}/cgi-bin/webscr"
    yield fake
    await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(
    gateway: Any, module_nats_url: str, make_database: Any, paypal: FakePaypal
) -> AsyncIterator[Any]:
    customer = await start_customer(
        CustomerSettings(
            nats_url=module_nats_url,
            database_url=await make_database(),
            ipn_verify_timeout_s=1.0,
            ipn_retry_base_s=0.2,
            ipn_max_attempts=4,
        )
    )

    async def answers() -> bool:
        return (await gateway.client.get("/v1/settings/paypal")).status_code == 200

    await wait_for(answers, timeout=10, message="the customer service behind the gateway")
    reply = await gateway.client.put(
        "/v1/settings/paypal", json={"enabled": True, "receiver_email": RECEIVER, "verify_url": paypal.url}
    )
    assert reply.status_code == 200, reply.text
    yield gateway.client
    await asyncio.wait_for(customer.stop(), 10)


async def new_customer(client: Any, **fields: Any) -> dict[str, Any]:
    reply = await client.post(
        "/v1/customers", json={"name": f"pay-{uuid.uuid4().hex[:10]}", "currency": "EUR", **fields}
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def dial_until(client: Any, cid: str, check: Any, timeout: float = 1.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ok() -> bool:
        nonlocal seen
        seen = (await client.get(f"/v1/customers/{cid}/dial-permission")).json()
        return bool(check(seen))

    await wait_for(ok, timeout=timeout, interval=0.02, message=lambda: f"dial permission stayed {seen}")
    return seen


async def test_payments_over_http(client: Any, gateway: Any) -> None:
    cid = (await new_customer(client))["id"]
    refused = await dial_until(client, cid, lambda a: True)
    assert refused["reasons"] == ["insufficient_credit"] and refused["credit"]["available"] == "0.00"
    billing = gateway.as_token(await gateway.make_token("billing"))
    body = {"amount": "25.50", "currency": "EUR", "method": "bank_transfer", "reference": "wire-1"}
    made = await client.post(f"/v1/customers/{cid}/payments", json=body, headers=billing)
    assert made.status_code == 201, made.text
    payment = made.json()
    assert payment["amount"] == "25.5" and payment["status"] == "completed" and payment["kind"] == "payment"
    allowed = await dial_until(client, cid, lambda a: a["allowed"])
    assert allowed["credit"] == {"balance": "25.50", "available": "25.50", "currency": "EUR"}
    again = await client.post(f"/v1/customers/{cid}/payments", json=body, headers=billing)
    assert again.status_code == 201 and again.json()["id"] == payment["id"]
    other = await client.post(f"/v1/customers/{cid}/payments", json={**body, "amount": "26"}, headers=billing)
    assert other.status_code == 409 and other.json()["error"]["details"][0]["type"] == "reference_reused"
    pending = await client.post(
        f"/v1/customers/{cid}/payments",
        headers=billing,
        json={
            "kind": "refund",
            "amount": "5",
            "currency": "EUR",
            "reference": "refund-1",
            "status": "pending",
        },
    )
    assert pending.status_code == 201
    done = await client.patch(
        f"/v1/customers/{cid}/payments/{pending.json()['id']}", json={"status": "completed"}, headers=billing
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    undo = await client.patch(
        f"/v1/customers/{cid}/payments/{pending.json()['id']}", json={"status": "cancelled"}, headers=billing
    )
    assert undo.status_code == 422
    balance = (await client.get(f"/v1/customers/{cid}/balance")).json()
    assert balance["balance"] == "20.50" and balance["payments"] == "25.50" and balance["refunds"] == "5.00"
    listed = (await client.get(f"/v1/customers/{cid}/payments", headers=billing)).json()
    assert listed["total"] == 2 and listed["items"][0]["reference"] == "refund-1"
    text = (await client.get(f"/v1/customers/{cid}/payments", params={"format": "csv"}, headers=billing)).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "id" and len(rows) == 3
    formula = {"amount": "1", "currency": "EUR", "reference": "=HYPERLINK(\"x\")", "description": "@SUM(1)"}
    assert (await client.post(f"/v1/customers/{cid}/payments", json=formula, headers=billing)).status_code == 201
    text = (await client.get(f"/v1/customers/{cid}/payments", params={"format": "csv"}, headers=billing)).text
    row = next(r for r in csv.reader(io.StringIO(text)) if "HYPERLINK" in r[7])
    assert row[7].startswith("'=") and row[10] == "'@SUM(1)"  # never a formula in a spreadsheet
    across = await client.get("/v1/payments", params={"customer_id": cid},
                              headers={**billing, "Accept": "text/csv"})  # CSV asked by Accept
    rows = list(csv.reader(io.StringIO(across.text)))
    assert across.headers["content-disposition"] == 'attachment; filename="payments.csv"'
    assert rows[0][:2] == ["customer_id", "id"] and len(rows) == 4 and {r[0] for r in rows[1:]} == {cid}
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    assert (await client.post(f"/v1/customers/{cid}/payments", json=body, headers=viewer)).status_code == 403
    assert (await client.get(f"/v1/customers/{cid}/payments", headers=viewer)).status_code == 403


async def test_bad_payments_are_clear_4xx(client: Any) -> None:
    cid = (await new_customer(client))["id"]
    url = f"/v1/customers/{cid}/payments"
    for body, status in [
        ({"amount": "1.00001", "currency": "EUR", "reference": "a"}, 422),
        ({"amount": "0", "currency": "EUR", "reference": "b"}, 422),
        ({"amount": "-1", "currency": "EUR", "reference": "c"}, 422),
        ({"amount": "-1", "currency": "EUR", "reference": "d", "kind": "adjustment"}, 422),
        ({"amount": "1", "currency": "USD", "reference": "e"}, 422),
        ({"amount": "1", "currency": "EUR"}, 422),
        ({"amount": "1", "currency": "EUR", "reference": "f", "method": "cash"}, 422),
    ]:
        reply = await client.post(url, json=body)
        assert reply.status_code == status, (body, reply.text)
        assert reply.json()["error"]["code"] == "validation_error"
    missing = await client.post(
        f"/v1/customers/{uuid.uuid4()}/payments", json={"amount": "1", "currency": "EUR", "reference": "g"}
    )
    assert missing.status_code == 404
    assert (await client.get(f"/v1/customers/{uuid.uuid4()}/balance")).status_code == 404


def ipn_body(**fields: str) -> bytes:
    """A form-encoded IPN in windows-1252, as PayPal sends it by default."""
    base = {
        "payment_status": "Completed",
        "receiver_email": RECEIVER,
        "mc_currency": "EUR",
        "mc_gross": "10.00",
        "mc_fee": "0.59",
        "txn_id": uuid.uuid4().hex[:17].upper(),
        "item_name": "Top-up für Konto",
        "charset": "windows-1252",
    }
    base.update(fields)
    return b"&".join(
        f"{k}=".encode() + quote_from_bytes(v.encode("cp1252")).encode() for k, v in base.items()
    )


async def ipn(client: Any, body: bytes) -> str:
    reply = await client.post(
        "/ipn/paypal",
        content=body,
        headers={"Authorization": "", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 200, reply.text
    txn = dict(parse_qsl(body.decode("latin-1"))).get("txn_id", "")
    return txn


async def log_of(
    client: Any, txn: str, outcome: str | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    async def done() -> Any:
        items = (await client.get("/v1/payments/ipn-log", params={"txn_id": txn})).json()["items"]
        final = [i for i in items if i["outcome"] != "pending"]
        if final and (outcome is None or any(i["outcome"] == outcome for i in final)):
            return items
        return None

    return await wait_for(done, timeout=timeout, message=f"IPN {txn} never reached {outcome or 'an outcome'}")


async def test_paypal_ipn_records_one_payment_per_txn(client: Any, paypal: FakePaypal) -> None:
    cid = (await new_customer(client, minimum_payment="20"))["id"]
    body = ipn_body(custom=cid, payer_email="payer@example.com")
    txn = await ipn(client, body)
    await log_of(client, txn, "below_minimum")
    assert PREFIX + body in paypal.bodies  # byte for byte
    await dial_until(client, cid, lambda a: a["allowed"] and a["credit"]["balance"] == "10.00")
    await ipn(client, body)  # PayPal's retry of the same txn_id
    entries = await log_of(client, txn, "duplicate")
    assert {e["outcome"] for e in entries} == {"below_minimum", "duplicate"}
    payments = (await client.get(f"/v1/customers/{cid}/payments")).json()["items"]
    assert len(payments) == 1
    p = payments[0]
    assert (p["method"], p["reference"], p["fee"], p["below_minimum"], p["source"]) == (
        "paypal",
        txn,
        "0.59",
        True,
        "paypal",
    )
    assert p["description"] == "PayPal Top-up für Konto"


async def test_paypal_customer_by_payer_email_and_refusals(client: Any, paypal: FakePaypal) -> None:
    email = f"p{uuid.uuid4().hex[:8]}@example.com"
    cid = (await new_customer(client, paypal_email=email))["id"]
    txn = await ipn(client, ipn_body(payer_email=email))
    [entry] = await log_of(client, txn, "recorded")
    assert entry["customer_id"] == cid and entry["verification"] == "VERIFIED"
    cases = {
        "invalid": ipn_body(custom=cid, txn_id="INV" + uuid.uuid4().hex[:10]),
        "receiver_mismatch": ipn_body(custom=cid, receiver_email="other@example.com"),
        "currency_mismatch": ipn_body(custom=cid, mc_currency="USD"),
        "not_completed": ipn_body(custom=cid, payment_status="Pending"),
        "customer_not_found": ipn_body(payer_email="nobody@example.com"),
    }
    paypal.script[dict(parse_qsl(cases["invalid"].decode("latin-1")))["txn_id"]] = ["INVALID"]
    for outcome, body in cases.items():
        [entry] = await log_of(client, await ipn(client, body), outcome)
        assert entry["reason"]
    balance = (await client.get(f"/v1/customers/{cid}/balance")).json()
    assert balance["payments"] == "10.00"


async def test_paypal_errors_and_slow_answers_are_retried(client: Any, paypal: FakePaypal) -> None:
    cid = (await new_customer(client))["id"]
    flaky = ipn_body(custom=cid)
    txn = dict(parse_qsl(flaky.decode("latin-1")))["txn_id"]
    paypal.script[txn] = [500, "slow", "VERIFIED"]
    await ipn(client, flaky)
    [entry] = await log_of(client, txn, "recorded", timeout=15)
    assert entry["attempts"] == 3
    down = ipn_body(custom=cid)
    txn_down = dict(parse_qsl(down.decode("latin-1")))["txn_id"]
    paypal.script[txn_down] = [503]
    await ipn(client, down)
    [gave_up] = await log_of(client, txn_down, "verify_failed", timeout=15)
    assert gave_up["attempts"] == 4


async def test_malformed_and_deleted_customer_ipns_are_logged(client: Any) -> None:
    txn = await ipn(client, b"%%%not&&a=form=body")
    log = (await client.get("/v1/payments/ipn-log")).json()["items"]
    assert any(e["outcome"] in ("malformed", "ignored") and e["reason"] for e in log)
    rows = list(csv.reader(io.StringIO((await client.get("/v1/payments/ipn-log", params={"format": "csv"})).text)))
    assert rows[0][:3] == ["id", "received_at", "txn_id"] and len(rows) > len(log)  # CSV: every entry
    cid = (await new_customer(client))["id"]
    assert (await client.delete(f"/v1/customers/{cid}")).status_code in (200, 204)
    txn = await ipn(client, ipn_body(custom=cid))
    [entry] = await log_of(client, txn, "customer_deleted")
    assert entry["customer_id"] == cid


def _browser(gateway: Any) -> Any:
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="https://gateway.test")  # cookies are Secure


async def _sign_in(browser: Any, token: str) -> None:
    page = await browser.get("/console/login")
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert csrf, "no CSRF field on the login page"
    reply = await browser.post("/console/login", data={"token": token, "csrf_token": csrf.group(1),
                                                       "next": "/console/"})
    assert reply.status_code == 303, reply.text


def _expected(ops: list[tuple[str, Decimal, Decimal]]) -> str:
    """Balance by the product's words, computed here independently of shared.money."""
    total = Decimal(0)
    for kind, amount, tax in ops:
        if kind == "payment":
            total += amount
        elif kind == "refund":
            total -= amount
        elif kind == "adjustment":
            total += amount
        elif kind == "call":
            total -= amount + amount * tax / 100
    return str(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) + 0)


async def test_every_place_shows_the_same_balance(client: Any, gateway: Any) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    cid = (await new_customer(client, debit_limit="1000"))["id"]
    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    ops: list[tuple[str, Decimal, Decimal]] = []
    tax = Decimal(0)
    try:
        for i in range(40):
            roll = rng.random()
            amount = Decimal(rng.randrange(1, 500_000)) / 10_000
            if roll < 0.15:
                tax = Decimal(rng.randrange(0, 2500)) / 100
                reply = await client.patch(f"/v1/customers/{cid}", json={"tax": str(tax)})
                assert reply.status_code == 200, reply.text
            elif roll < 0.55:
                call_id = uuid.uuid4().hex
                now = datetime.now(UTC).isoformat()
                await nc.jetstream().publish(f"calls.cdr.{cid}", json.dumps({
                    "call_id": call_id, "customer_id": cid, "started_at": now, "answered_at": now,
                    "ended_at": now, "duration_s": 30, "billed_duration_s": 30, "charge": str(amount),
                    "cost": "0", "disposition": "answered", "sip_code": 200, "pdd_ms": 90}).encode())
                ops.append(("call", amount, tax))
            else:
                kind = rng.choice(["payment", "payment", "refund", "adjustment"])
                signed = -amount if kind == "adjustment" and rng.random() < 0.4 else amount
                status = rng.choice(["completed", "completed", "pending"])
                body = {"kind": kind, "amount": str(signed), "currency": "EUR", "reference": f"r{i}",
                        "status": status, "description": "random mix"}
                reply = await client.post(f"/v1/customers/{cid}/payments", json=body)
                assert reply.status_code == 201, reply.text
                if status == "pending" and rng.random() < 0.5:
                    done = rng.choice(["completed", "cancelled"])
                    patch = await client.patch(f"/v1/customers/{cid}/payments/{reply.json()['id']}",
                                               json={"status": done})
                    assert patch.status_code == 200, patch.text
                    status = done
                if status == "completed":
                    ops.append((kind, signed, Decimal(0)))
    finally:
        await nc.drain()
    want = _expected(ops)
    async with _browser(gateway) as browser:
        await _sign_in(browser, gateway.admin_token)
        seen: dict[str, str] = {}

        async def agree() -> bool:
            api = (await client.get(f"/v1/customers/{cid}/balance")).json()
            dial = (await client.get(f"/v1/customers/{cid}/dial-permission")).json()
            card = (await browser.get(f"/console/customers/{cid}")).text
            tab = (await browser.get(f"/console/customers/{cid}/payments")).text
            tile = re.search(r'id="card-balance">(-?)€([0-9,.]+)', card)  # |money, as the tab
            summary = re.search(r'id="ledger-summary">Balance <strong>(-?)€([0-9,.]+)</strong>', tab)  # |money
            seen.update(api=api["balance"], dial=dial["credit"]["balance"],
                        tile=tile.group(1) + tile.group(2).replace(",", "") if tile else "",
                        tab=summary.group(1) + summary.group(2).replace(",", "") if summary else "",
                        available=str(Decimal(dial["credit"]["available"]) - 1000))
            return set(seen.values()) == {want}

        await wait_for(agree, timeout=10, interval=0.1,
                       message=lambda: f"places disagree (seed {seed}): want {want}, saw {seen}")
