"""Invoices (stored once per day, InvoiceIssued published through the outbox) and the lag (balance: customer)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient

from .conftest import call, cdr, create_customer, money, publish

pytestmark = pytest.mark.servers
BILLING = {"kind": "operator", "id": "tok-b", "name": "billing-bot", "ip": "192.0.2.50"}


async def customer_with_calls(nc: NatsClient, **fields: Any) -> tuple[str, list[date]]:
    """A customer with two past days of calls (charges 0.30 and 0.25)."""
    card = await create_customer(nc, **fields)
    cid = card["id"]
    js = nc.jetstream()
    d1 = (datetime.now(UTC) - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    d2 = d1 + timedelta(days=1)
    for moment, charge in ((d1, "0.1000"), (d1, "0.2000"), (d2, "0.2500")):
        await publish(js, f"calls.cdr.{cid}", cdr(cid, moment, charge=charge))

    async def counted() -> bool:
        reply = await call(nc, "reporting.query.summary", {
            "customer_id": cid, "period": "daily", "from": d1.date().isoformat(), "to": d2.date().isoformat()})
        return bool(reply["totals"]["attempts"] == 3)

    await wait_for(counted, timeout=10, message="the calls counted")
    return cid, [d1.date(), d2.date()]


async def test_invoice_lines_tax_total_and_the_event(nc: NatsClient) -> None:
    cid, (d1, d2) = await customer_with_calls(nc, tax="19", currency="EUR")
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_event(msg: Any) -> None:
        seen.put_nowait(msg.data)

    sub = await nc.subscribe(f"events.billing.{cid}.InvoiceIssued", cb=on_event)
    invoice = await call(nc, "reporting.cmd.generate-invoice", {
        "meta": {"actor": BILLING, "command_id": f"inv-{cid}"}, "customer_id": cid,
        "from": d1.isoformat(), "to": d2.isoformat()})
    assert "error" not in invoice, invoice
    assert invoice["currency"] == "EUR" and money(invoice["tax_rate"]) == Decimal("19")
    assert [(x["day"], money(x["amount"])) for x in invoice["lines"]] == [
        (d1.isoformat(), Decimal("0.3")), (d2.isoformat(), Decimal("0.25"))]
    assert money(invoice["subtotal"]) == Decimal("0.55")
    # 0.1045 rounded half-even to EUR's 2 decimals
    assert money(invoice["tax"]) == Decimal("0.10") and money(invoice["total"]) == Decimal("0.65")
    assert invoice["status"] == "open" and money(invoice["amount_due"]) == Decimal("0.65")
    assert invoice["document_number"] == f"INV-{invoice['number']}" and invoice["minor_units"] == 2
    event = json.loads(await asyncio.wait_for(seen.get(), 10))
    await sub.unsubscribe()
    assert event["type"] == "InvoiceIssued" and event["data"]["id"] == invoice["id"]
    assert event["metadata"]["actor"]["name"] == "billing-bot"
    # the same command again answers the first invoice and makes no second one
    again = await call(nc, "reporting.cmd.generate-invoice", {
        "meta": {"command_id": f"inv-{cid}"}, "customer_id": cid, "from": d1.isoformat(), "to": d2.isoformat()})
    assert again == invoice
    # the same command id with another request is refused
    other = await call(nc, "reporting.cmd.generate-invoice", {
        "meta": {"command_id": f"inv-{cid}"}, "customer_id": cid, "days": [d2.isoformat()]})
    assert other["error"]["code"] == "conflict", other
    assert other["error"]["details"][0]["type"] == "idempotency_key_reused"
    assert await call(nc, "reporting.query.invoice", {"invoice_id": invoice["id"]}) == invoice
    page = await call(nc, "reporting.query.invoices", {"customer_id": cid})
    assert page["total"] == 1 and page["items"] == [invoice]

    async def audited() -> bool:
        audit = await call(nc, "reporting.query.audit", {"customer_id": cid, "type": ["InvoiceIssued"]})
        return bool(audit["total"] == 1 and audit["items"][0]["action"] == "invoice issued")

    await wait_for(audited, timeout=10, message="the invoice in the audit log")


async def test_a_day_is_never_invoiced_twice(nc: NatsClient) -> None:
    cid, (d1, d2) = await customer_with_calls(nc)
    first = await call(nc, "reporting.cmd.generate-invoice", {"customer_id": cid, "days": [d1.isoformat()]})
    assert "error" not in first and money(first["total"]) == Decimal("0.3")
    clash = await call(nc, "reporting.cmd.generate-invoice", {
        "customer_id": cid, "from": d1.isoformat(), "to": d2.isoformat()})
    assert clash["error"]["code"] == "conflict"
    assert d1.isoformat() in clash["error"]["details"][0]["message"]
    racers = await asyncio.gather(*[
        call(nc, "reporting.cmd.generate-invoice", {"customer_id": cid, "days": [d2.isoformat()]})
        for _ in range(4)])
    assert sum("error" not in r for r in racers) == 1
    assert all(r["error"]["code"] == "conflict" for r in racers if "error" in r)


async def test_invoice_errors(nc: NatsClient) -> None:
    cid, (d1, _) = await customer_with_calls(nc)
    today = datetime.now(UTC).date()
    cases = [
        ({"customer_id": cid, "days": [today.isoformat()]}, "validation_error"),
        ({"customer_id": cid, "days": [(d1 - timedelta(days=30)).isoformat()]}, "validation_error"),
        ({"customer_id": cid, "from": d1.isoformat()}, "validation_error"),
        ({"customer_id": str(uuid.uuid4()), "days": [d1.isoformat()]}, "not_found"),
    ]
    for body, code in cases:
        reply = await call(nc, "reporting.cmd.generate-invoice", body)
        assert reply["error"]["code"] == code, (body, reply)
    missing = await call(nc, "reporting.query.invoice", {"invoice_id": str(uuid.uuid4())})
    assert missing["error"]["code"] == "not_found"


async def test_lag_lists_each_projection_and_stream(nc: NatsClient) -> None:
    lag = await call(nc, "reporting.query.lag", {})
    assert {(s["projection"], s["stream"]) for s in lag["streams"]} >= {
        ("audit", "CUSTOMER_EVENTS"), ("summaries", "CALLS")}
