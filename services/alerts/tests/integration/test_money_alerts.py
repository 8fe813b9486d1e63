"""Money alerts: available credit crossing below fires once (not on every later call record), a payment
re-arms; an overdue invoice fires invoice_overdue; the computed partition matches JetStream's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alerts.domain.partitions import partition_of
from alerts_testkit import call, cdr, customer_with_contact, publish_calls
from devtools.testing.jetstream import consumers_caught_up
from devtools.testing.waiting import holds_for, wait_for
from nats.aio.client import Client as NatsClient
from shared.contracts.events import REGISTRY
from shared.contracts.events.billing import InvoiceOverdue, InvoicePaid

pytestmark = pytest.mark.servers


async def firings(nc: NatsClient, customer_id: str, alert_id: str | None = None) -> list[dict]:
    reply = await call(nc, "alerts.query.firings", {"customer_id": customer_id, "alert_id": alert_id})
    assert "error" not in reply, reply
    return reply["items"]


async def pay(nc: NatsClient, cid: str, amount: str) -> None:
    """Record a payment, and wait until the alerts service has read it (it reads another stream than calls)."""
    reply = await call(nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": {
        "amount": amount, "currency": "EUR", "reference": uuid.uuid4().hex}})
    assert "error" not in reply, reply
    js = nc.jetstream()

    async def in_stream() -> bool:
        try:
            last = await js.get_last_msg("CUSTOMER_EVENTS", f"events.customer.{cid}.PaymentRecorded.*")
        except Exception:
            return False
        return json.loads(last.data or b"{}").get("data", {}).get("payment_id") == reply["id"]

    await wait_for(in_stream, timeout=5, message="the payment's event in CUSTOMER_EVENTS")
    await wait_for(lambda: consumers_caught_up(js, "CUSTOMER_EVENTS", "alerts-customers"),
                   timeout=5, message="the alerts service read the payment")


async def test_credit_crossing_below_fires_once_then_a_payment_rearms(stack: NatsClient) -> None:
    nc = stack
    cid, _ = await customer_with_contact(nc, currency="EUR", tax="10", debit_limit="5")
    await pay(nc, cid, "20")
    rule = await call(nc, "alerts.cmd.create", {"rule": {
        "name": f"credit low {uuid.uuid4().hex[:6]}", "scope": {"customer_id": cid}, "area": "available_credit",
        "operator": "lt", "threshold": "2", "reset_threshold": "10",
        "actions": {"email_operators": ["billing@carrier.example"]}}})
    assert "error" not in rule, rule

    # available = 20 + 5 - charges * 1.1: 25 - 4.4k; below 2 after the 6th call (25 - 26.4 = -1.4)
    await publish_calls(nc, [cdr(cid, answered=True, charge="4") for _ in range(5)])  # 3.0 left: not yet
    await holds_for(lambda: _none(nc, cid), 1.5, "still above 2: no firing")
    await publish_calls(nc, [cdr(cid, answered=True, charge="4")])
    [fired] = await wait_for(lambda: firings(nc, cid), timeout=5, message="the credit firing")
    assert fired["area"] == "available_credit" and Decimal(fired["value"]) == Decimal("-1.4") and fired["actions"] == [
        "email_operators"], fired

    await publish_calls(nc, [cdr(cid, answered=True, charge="1") for _ in range(10)])  # lower still
    await holds_for(lambda: _count(nc, cid, 1), 2.0, "every later call record: no second firing")

    await pay(nc, cid, "50")  # available 37.6: above the reset, re-armed, nothing fires
    await holds_for(lambda: _count(nc, cid, 1), 1.0, "a payment re-arms, it does not fire")
    await publish_calls(nc, [cdr(cid, answered=True, charge="40")])  # 37.6 - 44 = -6.4: fires again
    both = await wait_for(lambda: _at_least(nc, cid, 2), timeout=5, message="the second credit firing")
    assert [Decimal(f["value"]) for f in both] == [Decimal("-6.4"), Decimal("-1.4")], both


async def test_an_overdue_invoice_fires_and_paying_it_rearms(stack: NatsClient) -> None:
    nc = stack
    cid, _ = await customer_with_contact(nc, currency="EUR")
    rule = await call(nc, "alerts.cmd.create", {"rule": {
        "name": f"overdue {uuid.uuid4().hex[:6]}", "scope": {"customer_id": cid}, "area": "invoice_overdue",
        "operator": "gt", "threshold": "0", "actions": {"email_contacts": True}, "level": "error"}})
    assert "error" not in rule, rule
    js = nc.jetstream()
    invoice = str(uuid.uuid4())
    overdue = REGISTRY.envelope(InvoiceOverdue(
        invoice_id=invoice, customer_id=cid, document_number="INV-7", due_date="2026-11-30",
        amount_due="120.50", currency="EUR"), category="billing", stream_id=cid, version=3)
    await js.publish(overdue.subject, overdue.model_dump_json().encode())
    [fired] = await wait_for(lambda: firings(nc, cid), timeout=5, message="the overdue firing")
    assert fired["area"] == "invoice_overdue" and Decimal(fired["value"]) == Decimal("120.50"), fired

    paid = REGISTRY.envelope(InvoicePaid(
        invoice_id=invoice, customer_id=cid, document_number="INV-7", currency="EUR", total="120.50",
        amount_paid="120.50", amount_credited="0"), category="billing", stream_id=cid, version=4)
    await js.publish(paid.subject, paid.model_dump_json().encode())
    again = REGISTRY.envelope(InvoiceOverdue(
        invoice_id=str(uuid.uuid4()), customer_id=cid, document_number="INV-9", due_date="2026-12-01",
        amount_due="10", currency="EUR"), category="billing", stream_id=cid, version=5)
    await js.publish(again.subject, again.model_dump_json().encode())
    await wait_for(lambda: _at_least(nc, cid, 2), timeout=5, message="the second overdue invoice fires")


async def test_the_computed_partition_is_the_one_jetstream_stores(stack: NatsClient) -> None:
    js = stack.jetstream()
    ids = [str(uuid.uuid4()) for _ in range(16)]
    for cid in ids:
        await js.publish(f"calls.started.{cid}", json.dumps({"call_id": "x", "customer_id": cid,
                                                             "started_at": datetime.now(UTC).isoformat()}).encode())
    for cid in ids:
        msg = await js.get_last_msg("CALLS", f"calls.started.*.{cid}")  # the token before the customer
        assert msg.subject == f"calls.started.{partition_of(cid)}.{cid}"


async def _none(nc: NatsClient, cid: str) -> bool:
    found = await firings(nc, cid)
    assert not found, [(f["value"], f["event_at"], f["fired_at"]) for f in found]
    return True


async def _count(nc: NatsClient, cid: str, n: int) -> bool:
    return len(await firings(nc, cid)) == n


async def _at_least(nc: NatsClient, cid: str, n: int) -> list[dict] | None:
    items = await firings(nc, cid)
    return items if len(items) >= n else None
