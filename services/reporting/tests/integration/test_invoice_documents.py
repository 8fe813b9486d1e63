"""Invoices as documents: gapless numbers under concurrency, settings, late usage, void, credit notes."""

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
from reporting.bootstrap import ReportingService

from .conftest import call, cdr, create_customer, money, publish

pytestmark = pytest.mark.servers
BILLING = {"kind": "operator", "id": "tok-b", "name": "billing-bot", "ip": "192.0.2.50"}


async def calls_on(nc: NatsClient, cid: str, day: date, charges: list[str]) -> None:
    """Publish answered calls of that day and wait until the summary counts them."""
    js = nc.jetstream()
    before = await attempts(nc, cid, day)
    moment = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    for charge in charges:
        await publish(js, f"calls.cdr.{cid}", cdr(cid, moment, charge=charge))

    async def counted() -> bool:
        return await attempts(nc, cid, day) == before + len(charges)

    await wait_for(counted, timeout=10, message="the calls counted")


async def attempts(nc: NatsClient, cid: str, day: date) -> int:
    reply = await call(nc, "reporting.query.summary", {
        "customer_id": cid, "period": "daily", "from": day.isoformat(), "to": day.isoformat()})
    return int(reply["totals"]["attempts"])


async def issue(nc: NatsClient, cid: str, days: list[date], **meta: Any) -> dict[str, Any]:
    return await call(nc, "reporting.cmd.generate-invoice", {  # type: ignore[no-any-return]
        "meta": {"actor": BILLING, **meta}, "customer_id": cid, "days": [d.isoformat() for d in days]})


def past(n: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=n)


async def test_concurrent_invoices_take_every_number_once_without_gaps(nc: NatsClient) -> None:
    customers = [(await create_customer(nc, currency="EUR"))["id"] for _ in range(6)]
    day = past(5)
    for cid in customers:
        await calls_on(nc, cid, day, ["0.1000"])
    first = await issue(nc, customers[0], [day])
    # six requests at once: five new invoices and one that fails (its day is taken): no number lost
    replies = await asyncio.gather(*[issue(nc, cid, [day]) for cid in customers])
    numbers = sorted(r["number"] for r in replies if "error" not in r)
    assert [r["error"]["code"] for r in replies if "error" in r] == ["conflict"]
    assert numbers == list(range(first["number"] + 1, first["number"] + 6))
    settings = await call(nc, "reporting.query.settings.invoices", {})
    assert settings["next_number"] == first["number"] + 6


async def test_settings_number_prefix_due_days_and_the_carrier(nc: NatsClient) -> None:
    cid = (await create_customer(nc, currency="JPY", tax="10"))["id"]
    day = past(4)
    await calls_on(nc, cid, day, ["100.5000", "20.2500"])
    current = await call(nc, "reporting.query.settings.invoices", {})
    lower = await call(nc, "reporting.cmd.settings.invoices", {
        "meta": {"actor": BILLING}, "settings": {"next_number": 1}})
    if current["next_number"] > 1:
        assert lower["error"]["code"] == "conflict", lower
    wanted = current["next_number"] + 1000
    changed = await call(nc, "reporting.cmd.settings.invoices", {"meta": {"actor": BILLING}, "settings": {
        "prefix": "PB-2030-", "next_number": wanted, "due_days": 14, "company_name": "Patchbay Telecom",
        "company_address": "1 Carrier Street\nBerlin", "payment_details": "IBAN DE00 1234",
        "footer": "Thank you"}})
    assert changed["prefix"] == "PB-2030-" and changed["next_number"] == wanted, changed
    bad = await call(nc, "reporting.cmd.settings.invoices", {"settings": {"due_days": -1}})
    assert bad["error"]["code"] == "validation_error"
    invoice = await issue(nc, cid, [day])
    assert invoice["document_number"] == f"PB-2030-{wanted}" and invoice["number"] == wanted
    issued = date.fromisoformat(invoice["issue_date"])
    assert date.fromisoformat(invoice["due_date"]) == issued + timedelta(days=14)
    assert invoice["seller"]["company_name"] == "Patchbay Telecom"
    # JPY has no minor units: the day's line 120.75 is rounded once, to 121
    assert [money(x["amount"]) for x in invoice["lines"]] == [Decimal("121")]
    assert money(invoice["tax"]) == Decimal("12") and money(invoice["total"]) == Decimal("133")
    assert invoice["minor_units"] == 0 and "half-even" in invoice["rounding"]
    await call(nc, "reporting.cmd.settings.invoices", {"settings": {"prefix": "INV-", "due_days": 30}})


async def test_a_late_call_record_is_billed_once_on_the_next_invoice(nc: NatsClient) -> None:
    cid = (await create_customer(nc, currency="EUR"))["id"]
    d1, d2, d3 = past(9), past(8), past(7)
    await calls_on(nc, cid, d1, ["1.0000"])
    first = await issue(nc, cid, [d1])
    assert money(first["total"]) == Decimal("1.00")
    await calls_on(nc, cid, d1, ["0.4000", "0.0050"])  # late records for the invoiced day
    await calls_on(nc, cid, d2, ["2.0000"])
    second = await issue(nc, cid, [d2])
    assert [(x["day"], x["kind"], money(x["amount"])) for x in second["lines"]] == [
        (d1.isoformat(), "late_usage", Decimal("0.40")), (d2.isoformat(), "usage", Decimal("2.00"))]
    assert money(second["total"]) == Decimal("2.40")
    await calls_on(nc, cid, d3, ["3.0000"])
    third = await issue(nc, cid, [d3])  # the late usage is not billed again
    assert [(x["day"], x["kind"]) for x in third["lines"]] == [(d3.isoformat(), "usage")]
    # late usage alone makes an invoice too, even for a range without calls of its own
    await calls_on(nc, cid, d2, ["0.5000"])
    fourth = await issue(nc, cid, [past(6)])
    assert [(x["day"], x["kind"], money(x["amount"])) for x in fourth["lines"]] == [
        (d2.isoformat(), "late_usage", Decimal("0.50"))]
    nothing = await issue(nc, cid, [past(3)])
    assert nothing["error"]["code"] == "validation_error"


async def test_void_keeps_the_days_invoiced(nc: NatsClient) -> None:
    cid = (await create_customer(nc))["id"]
    day = past(10)
    await calls_on(nc, cid, day, ["1.0000"])
    invoice = await issue(nc, cid, [day])
    no_reason = await call(nc, "reporting.cmd.invoice.void", {"invoice_id": invoice["id"], "reason": " "})
    assert no_reason["error"]["code"] == "validation_error"
    voided = await call(nc, "reporting.cmd.invoice.void", {
        "meta": {"actor": BILLING, "command_id": f"void-{cid}"}, "invoice_id": invoice["id"],
        "reason": "wrong rates"})
    assert voided["status"] == "void" and voided["void_reason"] == "wrong rates", voided
    assert money(voided["amount_due"]) == 0
    again = await call(nc, "reporting.cmd.invoice.void", {"invoice_id": invoice["id"], "reason": "twice"})
    assert again["error"]["code"] == "conflict"
    assert (await issue(nc, cid, [day]))["error"]["code"] == "conflict"
    credit = await call(nc, "reporting.cmd.invoice.credit-note", {
        "invoice_id": invoice["id"], "amount": "0.10", "reason": "void"})
    assert credit["error"]["code"] == "conflict"

    async def audited() -> bool:
        audit = await call(nc, "reporting.query.audit", {"customer_id": cid, "type": ["InvoiceVoided"]})
        return bool(audit["total"] == 1 and audit["items"][0]["actor"]["name"] == "billing-bot")

    await wait_for(audited, timeout=10, message="the void in the audit log")


async def test_credit_notes_are_numbered_and_settle_the_invoice(nc: NatsClient) -> None:
    cid = (await create_customer(nc, currency="EUR"))["id"]
    day = past(11)
    await calls_on(nc, cid, day, ["10.0000"])
    invoice = await issue(nc, cid, [day])
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_event(msg: Any) -> None:
        events.put_nowait(json.loads(msg.data))

    sub = await nc.subscribe(f"events.billing.{cid}.*", cb=on_event)
    cases = [("0.001", "validation_error"), ("10.01", "validation_error"), ("-1", "validation_error")]
    for amount, code in cases:
        bad = await call(nc, "reporting.cmd.invoice.credit-note", {
            "invoice_id": invoice["id"], "amount": amount, "reason": "x"})
        assert bad["error"]["code"] == code, (amount, bad)
    one = await call(nc, "reporting.cmd.invoice.credit-note", {
        "meta": {"actor": BILLING}, "invoice_id": invoice["id"], "amount": "4.00", "reason": "outage"})
    two = await call(nc, "reporting.cmd.invoice.credit-note", {
        "meta": {"actor": BILLING}, "invoice_id": invoice["id"], "amount": "6.00", "reason": "goodwill"})
    assert one["document_number"] == f"CN-{one['number']}" and two["number"] == one["number"] + 1
    assert one["invoice_number"] == invoice["document_number"]
    settled = await call(nc, "reporting.query.invoice", {"invoice_id": invoice["id"]})
    assert settled["status"] == "paid" and money(settled["amount_credited"]) == Decimal("10.00")
    assert money(settled["amount_due"]) == 0
    page = await call(nc, "reporting.query.credit-notes", {"invoice_id": invoice["id"]})
    assert [x["id"] for x in page["items"]] == [two["id"], one["id"]] and page["total"] == 2
    seen: list[dict[str, Any]] = []
    while len(seen) < 3:  # the InvoiceIssued may come first, relayed after the subscription
        if (event := await asyncio.wait_for(events.get(), 10))["type"] != "InvoiceIssued":
            seen.append(event)
    await sub.unsubscribe()
    assert [e["type"] for e in seen] == ["CreditNoteIssued", "CreditNoteIssued", "InvoicePaid"]
    assert seen[0]["data"]["amount"] == "4.00" and seen[0]["data"]["customer_id"] == cid


async def test_past_due_invoices_become_overdue(nc: NatsClient, reporting: ReportingService) -> None:
    cid = (await create_customer(nc))["id"]
    day = past(12)
    await calls_on(nc, cid, day, ["1.0000"])
    invoice = await issue(nc, cid, [day])
    assert reporting.clock is not None
    later = date.fromisoformat(invoice["due_date"]) + timedelta(days=1)
    assert await reporting.clock.changes.mark_overdue(later) >= 1
    overdue = await call(nc, "reporting.query.invoice", {"invoice_id": invoice["id"]})
    assert overdue["status"] == "overdue"
    assert await reporting.clock.changes.mark_overdue(later) == 0  # once
    listed = await call(nc, "reporting.query.invoices", {"customer_id": cid, "status": ["overdue"]})
    assert [x["id"] for x in listed["items"]] == [invoice["id"]]


async def pay(nc: NatsClient, cid: str, amount: str, currency: str = "EUR", **fields: Any) -> dict[str, Any]:
    """Record a payment on the customer service's ledger."""
    payment = {"amount": amount, "currency": currency, "reference": f"ref-{uuid.uuid4().hex[:8]}", **fields}
    reply = await call(nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": payment})
    assert "error" not in reply, reply
    return reply  # type: ignore[no-any-return]


async def credit_held(reporting: ReportingService, cid: str, amount: Decimal) -> None:
    """Wait until reporting holds `amount` of the customer's completed payments unallocated."""

    async def kept() -> bool:
        held = await reporting.pool.fetchval(
            "SELECT sum(unallocated) FROM invoice_payments WHERE customer_id = $1 AND status = 'completed'",
            cid)
        return bool(held == amount)

    await wait_for(kept, timeout=10, message=f"{amount} of the customer's payments held unallocated")


async def invoice_now(nc: NatsClient, invoice_id: str, check: Any) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def ok() -> bool:
        nonlocal last
        last = await call(nc, "reporting.query.invoice", {"invoice_id": invoice_id})
        return bool(check(last))

    await wait_for(ok, timeout=10, message=lambda: f"the invoice stayed {last}")
    return last


async def test_a_payment_pays_two_invoices_oldest_first(nc: NatsClient, reporting: ReportingService) -> None:
    cid = (await create_customer(nc, currency="EUR"))["id"]
    d1, d2 = past(15), past(14)
    await calls_on(nc, cid, d1, ["1.0000"])
    await calls_on(nc, cid, d2, ["2.0000"])
    older = await issue(nc, cid, [d1])
    newer = await issue(nc, cid, [d2])
    pending = await pay(nc, cid, "0.50", status="pending")  # not counted until completed
    await pay(nc, cid, "2.50")
    first = await invoice_now(nc, older["id"], lambda i: i["status"] == "paid")
    assert money(first["amount_paid"]) == Decimal("1.00") and money(first["amount_due"]) == 0
    second = await invoice_now(nc, newer["id"], lambda i: money(i["amount_paid"]) == Decimal("1.50"))
    assert second["status"] == "open" and money(second["amount_due"]) == Decimal("0.50")
    await pay(nc, cid, "1.00", currency="EUR", kind="refund")  # a refund pays no invoice
    done = await call(nc, "customer.cmd.payment.set-status", {
        "customer_id": cid, "payment_id": pending["id"], "status": "completed"})
    assert "error" not in done, done
    paid = await invoice_now(nc, newer["id"], lambda i: i["status"] == "paid")
    assert money(paid["amount_paid"]) == Decimal("2.00")
    # money paid ahead waits for the next invoice, which it pays as it is issued; the invoice is
    # issued once reporting holds the payment (a retry by the same command id would only replay
    # the first answer, an open invoice, if the payment's event came after it)
    await pay(nc, cid, "5.00")
    await credit_held(reporting, cid, Decimal("5.00"))
    d3 = past(13)
    await calls_on(nc, cid, d3, ["3.0000"])
    third = await issue(nc, cid, [d3], command_id=f"third-{cid}")
    assert third["status"] == "paid" and money(third["amount_paid"]) == Decimal("3.00"), third
    await credit_held(reporting, cid, Decimal("2.00"))

    async def audited() -> bool:  # 1.00 + 1.50 of the first payment, 0.50 pending, 3.00 ahead
        audit = await call(nc, "reporting.query.audit", {"customer_id": cid, "type": ["PaymentAllocated"]})
        return bool(audit["total"] == 4)

    await wait_for(audited, timeout=10, message="four allocations in the audit log")


async def test_a_credit_note_reaches_the_ledger(nc: NatsClient) -> None:
    cid = (await create_customer(nc, currency="EUR"))["id"]
    day = past(16)
    await calls_on(nc, cid, day, ["4.0000"])
    invoice = await issue(nc, cid, [day])
    note = await call(nc, "reporting.cmd.invoice.credit-note", {
        "invoice_id": invoice["id"], "amount": "1.25", "reason": "outage"})
    assert "error" not in note, note

    async def credited() -> bool:
        balance = await call(nc, "customer.query.balance", {"customer_id": cid})
        return bool(balance["credit_notes"] == "1.25")

    await wait_for(credited, timeout=10, message="the credit note on the customer's ledger")


async def test_a_monthly_schedule_invoices_the_closed_month_once(nc: NatsClient, reporting: ReportingService) -> None:
    cid = (await create_customer(nc, currency="EUR", invoice_schedule="monthly"))["id"]
    first_this_month = datetime.now(UTC).date().replace(day=1)
    last_month = (first_this_month - timedelta(days=1)).replace(day=1)
    await calls_on(nc, cid, last_month + timedelta(days=2), ["1.0000"])
    await calls_on(nc, cid, last_month + timedelta(days=20), ["2.0000"])

    async def scheduled_known() -> bool:  # the schedule is read from the audit log of customer events
        audit = await call(nc, "reporting.query.audit", {"customer_id": cid, "type": ["CustomerCreated"]})
        return bool(audit["total"] == 1)

    await wait_for(scheduled_known, timeout=10, message="the card in the audit log")
    assert reporting.clock is not None and reporting.clock.schedules is not None
    assert await reporting.clock.schedules() >= 1
    page = await call(nc, "reporting.query.invoices", {"customer_id": cid})
    assert page["total"] == 1
    invoice = page["items"][0]
    assert invoice["period_from"] == (last_month + timedelta(days=2)).isoformat()
    assert money(invoice["total"]) == Decimal("3.00")
    assert await reporting.clock.schedules() == 0  # once per period

    async def audited() -> bool:
        audit = await call(nc, "reporting.query.audit", {"customer_id": cid, "type": ["InvoiceIssued"]})
        return bool(audit["total"] == 1 and audit["items"][0]["actor"]["name"] == "invoice schedule")

    await wait_for(audited, timeout=10, message="the scheduled invoice in the audit log, by the schedule")
