"""The ledger against real servers: payments, call charges, credit in the dial check, restarts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from customer.bootstrap import CustomerService, CustomerSettings, start
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.contracts.notify import SystemMessage
from shared.dead_letters import dead_letters

from .conftest import call, create

pytestmark = pytest.mark.asyncio(loop_scope="session")
DIAL = "customer.query.dial-permission"


async def dial(nc: NatsClient, customer_id: str, **extra: Any) -> dict[str, Any]:
    return await call(nc, DIAL, {"customer_id": customer_id, **extra})  # type: ignore[no-any-return]


async def pay(nc: NatsClient, customer_id: str, amount: str, currency: str = "EUR", **fields: Any) -> Any:
    payment = {"amount": amount, "currency": currency, "reference": f"ref-{uuid.uuid4().hex[:8]}", **fields}
    return await call(nc, "customer.cmd.payment.record", {"customer_id": customer_id, "payment": payment})


async def cdr(
    nc: NatsClient,
    customer_id: str,
    charge: str,
    started_at: datetime | None = None,
    call_id: str | None = None,
) -> str:
    call_id = call_id or uuid.uuid4().hex
    started = (started_at or datetime.now(UTC)).isoformat()
    record = {
        "call_id": call_id,
        "customer_id": customer_id,
        "started_at": started,
        "answered_at": started,
        "ended_at": started,
        "duration_s": 60,
        "billed_duration_s": 60,
        "charge": charge,
        "cost": "0",
        "disposition": "answered",
        "sip_code": 200,
        "pdd_ms": 100,
    }
    await nc.jetstream().publish(
        f"calls.cdr.{customer_id}", json.dumps(record).encode(), headers={"Nats-Msg-Id": uuid.uuid4().hex}
    )
    return call_id


async def wait_answer(
    nc: NatsClient, customer_id: str, check: Any, timeout: float = 1.0, **extra: Any
) -> dict:
    last: dict[str, Any] = {}

    async def ok() -> bool:
        nonlocal last
        last = await dial(nc, customer_id, **extra)
        return bool(check(last))

    await wait_for(ok, timeout=timeout, interval=0.01, message=lambda: f"dial answer stayed {last}")
    return last


async def test_prepaid_customer_runs_out_and_pays_again(nc: NatsClient) -> None:
    card = await create(nc, currency="EUR", tax="10")
    cid = card["id"]
    first = await dial(nc, cid)
    assert first["allowed"] is False and first["reasons"] == ["insufficient_credit"]
    assert first["credit"] == {"balance": "0.00", "available": "0.00", "currency": "EUR"}
    paid = await pay(nc, cid, "10")
    assert paid["status"] == "completed" and paid["amount"] == "10"
    allowed = await wait_answer(nc, cid, lambda a: a["allowed"])
    assert allowed["credit"]["balance"] == "10.00"
    await cdr(nc, cid, "9.10")  # 10.01 with 10 % tax
    refused = await wait_answer(nc, cid, lambda a: not a["allowed"])
    assert refused["reasons"] == ["insufficient_credit"]
    assert refused["credit"] == {"balance": "-0.01", "available": "-0.01", "currency": "EUR"}
    # a billing system's payment (NATS, BILLING_EVENTS) lands in the same ledger
    ref = uuid.uuid4().hex
    body = {
        "payment_id": ref,
        "customer_id": cid,
        "amount": "5",
        "currency": "EUR",
        "received_at": datetime.now(UTC).isoformat(),
    }
    for _ in range(2):  # a repeated message records once
        await nc.jetstream().publish(f"billing.payments.{cid}", json.dumps(body).encode())
    again = await wait_answer(nc, cid, lambda a: a["allowed"])
    assert again["credit"]["balance"] == "4.99"
    balance = await call(nc, "customer.query.balance", {"customer_id": cid})
    assert balance["balance"] == "4.99" and balance["charges"] == "10.01" and balance["payments"] == "15.00"
    page = await call(nc, "customer.query.payments", {"customer_id": cid})
    assert page["total"] == 2 and {p["source"] for p in page["items"]} == {"http", "nats"}


async def test_payment_idempotent_by_reference(nc: NatsClient) -> None:
    cid = (await create(nc, currency="EUR"))["id"]
    payment = {"amount": "12.5", "currency": "EUR", "reference": "inv-1", "method": "bank_transfer"}
    first = await call(nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": payment})
    second = await call(nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": payment})
    assert second["id"] == first["id"]
    other = await call(
        nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": {**payment, "amount": "13"}}
    )
    assert other["error"]["code"] == "conflict"
    assert other["error"]["details"][0]["type"] == "reference_reused"
    page = await call(nc, "customer.query.payments", {"customer_id": cid})
    assert page["total"] == 1


async def test_bad_payments_are_refused(nc: NatsClient) -> None:
    cid = (await create(nc, currency="EUR"))["id"]
    for payment, code in [
        ({"amount": "1.00001", "currency": "EUR", "reference": "a"}, "validation_error"),
        ({"amount": "0", "currency": "EUR", "reference": "b"}, "validation_error"),
        ({"amount": "-5", "currency": "EUR", "reference": "c"}, "validation_error"),
        ({"amount": "-5", "currency": "EUR", "reference": "d", "kind": "adjustment"}, "validation_error"),
        ({"amount": "5", "currency": "USD", "reference": "e"}, "validation_error"),
    ]:
        reply = await call(nc, "customer.cmd.payment.record", {"customer_id": cid, "payment": payment})
        assert reply["error"]["code"] == code, (payment, reply)
    unknown = await pay(nc, str(uuid.uuid4()), "5")
    assert unknown["error"]["code"] == "not_found"
    adjust = await pay(nc, cid, "-5", kind="adjustment", description="goodwill reversal")
    assert adjust["amount"] == "-5"


async def test_pending_payment_counts_once_completed(nc: NatsClient) -> None:
    cid = (await create(nc, currency="EUR", debit_limit="0"))["id"]
    pending = await pay(nc, cid, "20", status="pending")
    assert (await dial(nc, cid))["reasons"] == ["insufficient_credit"]
    done = await call(
        nc,
        "customer.cmd.payment.set-status",
        {"customer_id": cid, "payment_id": pending["id"], "status": "completed"},
    )
    assert done["status"] == "completed"
    await wait_answer(nc, cid, lambda a: a["allowed"] and a["credit"]["balance"] == "20.00")
    back = await call(
        nc,
        "customer.cmd.payment.set-status",
        {"customer_id": cid, "payment_id": pending["id"], "status": "cancelled"},
    )
    assert back["error"]["code"] == "invalid_status_transition"


async def test_max_duration_and_daily_limit(nc: NatsClient) -> None:
    cid = (await create(nc, currency="EUR", debit_limit="5", daily_spend_limit="3"))["id"]
    answer = await dial(nc, cid, rate_per_minute="0.5", connect_fee="1")
    assert answer["allowed"] and answer["max_duration_s"] == 480  # (5 - 1) / 0.5 * 60
    capped = await dial(nc, cid, rate_per_minute="0.00001")
    assert capped["max_duration_s"] == 14_400
    bad = await dial(nc, cid, rate_per_minute="lots")
    assert bad["error"]["code"] == "validation_error"
    await cdr(nc, cid, "3")
    refused = await wait_answer(nc, cid, lambda a: not a["allowed"])
    assert refused["reasons"] == ["daily_spend_limit"]
    assert refused["credit"]["available"] == "2.00"


async def test_receipt_goes_to_the_billing_contacts(nc: NatsClient) -> None:
    cid = (await create(nc, currency="EUR"))["id"]
    for name, kind in (("Ann", "general"), ("Bob", "billing")):
        contact = {"name": name, "email": f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com", "contact_type": kind}
        reply = await call(nc, "customer.cmd.contact.add",
                           {"customer_id": cid, "contact": contact, "password": "a long typed password 1"})
        assert "error" not in reply, reply
    seen: list[SystemMessage] = []

    async def on(msg: Any) -> None:
        seen.append(SystemMessage.model_validate_json(msg.data))

    sub = await nc.subscribe(f"notify.email.payment_receipt.{cid}", cb=on)
    try:
        paid = await pay(nc, cid, "30", notify_contacts=True)
        await wait_for(lambda: len(seen) >= 1, timeout=5, message="the receipt on NOTIFY")
        [note] = seen
        assert note.to.startswith("bob-") and note.template == "payment_receipt"
        assert note.variables["amount"] == "30.00" and note.variables["reference"] == paid["reference"]
        assert note.notification_id == f"receipt:{paid['id']}:{note.contact_id}"
    finally:
        await sub.unsubscribe()


async def test_credit_notes_from_reporting_count_once_on_the_ledger(nc: NatsClient) -> None:
    card = await create(nc, currency="EUR")
    cid = card["id"]
    note_id = str(uuid.uuid4())
    envelope = {
        "event_id": str(uuid.uuid4()), "type": "CreditNoteIssued", "category": "billing", "stream_id": cid,
        "version": 1, "occurred_at": datetime.now(UTC).isoformat(), "data": {
            "id": note_id, "number": 7, "document_number": "CN-7", "invoice_id": str(uuid.uuid4()),
            "invoice_number": "INV-9", "customer_id": cid, "currency": "EUR", "amount": "2.50",
            "reason": "outage", "created_at": datetime.now(UTC).isoformat()}}
    js = nc.jetstream()
    for _ in range(2):  # a redelivery (another message id) counts once: by the note's id
        await js.publish(f"events.billing.{cid}.CreditNoteIssued", json.dumps(envelope).encode(),
                         headers={"Nats-Msg-Id": uuid.uuid4().hex})
    await js.publish(f"events.billing.{cid}.CreditNoteIssued", b"not json")  # parked, the rest goes on

    async def parked() -> bool:  # the ordered consumer is past both copies once the last is parked
        return any(d.original_subject == f"events.billing.{cid}.CreditNoteIssued" for d in await dead_letters(js))

    await wait_for(parked, timeout=10, message="the malformed message parked")
    answer = await wait_answer(nc, cid, lambda a: a["credit"]["balance"] == "2.50", timeout=5)
    assert answer["allowed"] is True
    balance = await call(nc, "customer.query.balance", {"customer_id": cid})
    assert balance["credit_notes"] == "2.50" and balance["balance"] == "2.50", balance


async def test_charges_and_payments_reach_every_replica(nc: NatsClient, service: CustomerService) -> None:
    cid = (await create(nc, currency="EUR", debit_limit="10"))["id"]
    replica = await start(CustomerSettings(nats_url=service.settings.nats_url,
                                           database_url=service.settings.database_url))
    try:
        await cdr(nc, cid, "4")
        await pay(nc, cid, "1.5")

        async def both() -> bool:
            books = [s.dial.views.credit for s in (service, replica) if s.dial is not None]
            answers = {b.verdict(cid, int(datetime.now(UTC).timestamp() // 86400))[2] for b in books}
            return len(books) == 2 and answers == {
                '{"balance":"-2.50","available":"7.50","currency":"EUR"}'}

        await wait_for(both, timeout=5, message="both replicas see the charge and the payment")
    finally:
        await replica.stop()
