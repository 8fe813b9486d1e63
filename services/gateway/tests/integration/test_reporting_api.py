"""Reporting through the gateway: the real reporting and customer services in-process, roles, CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from pypdf import PdfReader
from reporting.bootstrap import start as start_reporting
from reporting.settings import ReportingSettings

from shared import bus

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(gateway: Any, module_nats_url: str, make_database: Any) -> AsyncIterator[None]:
    """The customer and reporting services on the gateway's NATS, each on a fresh database."""
    customer = await start_customer(CustomerSettings(nats_url=module_nats_url, database_url=await make_database()))
    reporting = await start_reporting(ReportingSettings(
        nats_url=module_nats_url, database_url=await make_database()))

    async def answers() -> bool:
        reply = await gateway.client.get("/v1/reporting/lag")
        return reply.status_code == 200

    await wait_for(answers, timeout=10, message="the reporting service behind the gateway")
    yield
    await reporting.stop()
    try:
        await asyncio.wait_for(customer.stop(), 5)
    except TimeoutError:
        await customer.nc.close()
        customer.pool.terminate()


@pytest.fixture
def client(gateway: Any, services: None) -> Any:
    """The admin client, once the services answer."""
    return gateway.client


async def new_customer(client: Any, **fields: Any) -> dict[str, Any]:
    reply = await client.post("/v1/customers", json={"name": f"rep-{uuid.uuid4().hex[:10]}", **fields})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def publish_calls(gateway: Any, customer_id: str, days_ago: int = 2) -> str:
    """Three calls on a past day; return that day."""
    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    js = nc.jetstream()
    start = (datetime.now(UTC) - timedelta(days=days_ago)).replace(hour=9, minute=0, second=0, microsecond=0)
    for i, charge in enumerate(("0.1000", "0.2000", "0.3000")):
        moment = start + timedelta(minutes=i)
        await js.publish(f"calls.cdr.{customer_id}", json.dumps({
            "call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": moment.isoformat(),
            "answered_at": moment.isoformat(), "ended_at": (moment + timedelta(seconds=60)).isoformat(),
            "duration_s": 60, "billed_duration_s": 60, "charge": charge, "cost": "0.0500",
            "disposition": "answered", "sip_code": 200, "pdd_ms": 1200}).encode())
    await nc.drain()
    return start.date().isoformat()


async def test_the_audit_log_shows_the_operator_and_the_diff(client: Any, gateway: Any) -> None:
    card = await new_customer(client)
    await client.patch(f"/v1/customers/{card['id']}", json={"channels": 4},
                       headers={"X-Audit-Reason": "upgrade"})

    async def two() -> Any:
        reply = await client.get(f"/v1/customers/{card['id']}/audit")
        return reply.json() if reply.status_code == 200 and reply.json()["total"] == 2 else None

    page = await wait_for(two, timeout=10, message="two audit entries")
    update = page["items"][0]
    assert update["action"] == "updated" and update["reason"] == "upgrade"
    assert update["changes"]["channels"] == {"old": 0, "new": 4}
    assert update["actor"]["kind"] == "operator" and update["ip"]
    text = (await client.get(f"/v1/customers/{card['id']}/audit", params={"format": "csv"})).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["occurred_at", "customer_id", "type", "action"] and len(rows) == 3
    at = page["items"][1]["occurred_at"]
    then = await client.get(f"/v1/customers/{card['id']}/as-of", params={"at": at})
    assert then.status_code == 200 and then.json()["card"]["channels"] == 0
    early = await client.get(f"/v1/customers/{card['id']}/as-of", params={"at": "2000-01-01T00:00:00Z"})
    assert early.status_code == 404 and early.json()["error"]["code"] == "not_found"


async def test_roles(client: Any, gateway: Any) -> None:
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    operator = gateway.as_token(await gateway.make_token("operator"))
    card = await new_customer(client)
    cid = card["id"]
    assert (await client.get(f"/v1/customers/{cid}/summary", headers=viewer)).status_code == 200
    assert (await client.get(f"/v1/customers/{cid}/audit", headers=viewer)).status_code == 200
    assert (await client.get("/v1/audit", headers=operator)).status_code == 403
    assert (await client.get("/v1/audit")).status_code == 200
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    denied = await client.post(f"/v1/customers/{cid}/invoices", json={"days": [day]}, headers=operator)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    # found by fuzzing as a viewer: a bad header or body was 422 before the role was checked
    for body, extra in (({"days": [day]}, {"X-Audit-Reason": "r" * 501}), ({"days": "nope"}, {}),
                        ({"days": [day]}, {})):
        refused = await client.post(f"/v1/customers/{cid}/invoices", json=body, headers=viewer | extra)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
    refused = await client.post("/v1/customers/not-a-uuid/invoices", json={}, headers=viewer)
    assert refused.status_code == 403, refused.text
    long_reason = {"X-Audit-Reason": "r" * 501}
    for method, path, body in (("PUT", "/v1/settings/invoices", {"due_days": -1}),
                               ("POST", f"/v1/invoices/{cid}/void", {}),
                               ("POST", f"/v1/invoices/{cid}/credit-notes", {"amount": ""})):
        refused = await client.request(method, path, json=body, headers=viewer | long_reason)
        assert refused.status_code == 403, (path, refused.text)
    assert (await client.get(f"/v1/customers/{cid}/audit", headers={"Authorization": ""})).status_code == 401


async def test_summary_invoice_conflict_and_balance(client: Any, gateway: Any) -> None:
    card = await new_customer(client, tax="10", currency="EUR")
    cid = card["id"]
    day = await publish_calls(gateway, cid)

    async def counted() -> Any:
        reply = await client.get(f"/v1/customers/{cid}/summary", params={"from": day, "to": day})
        return reply.json() if reply.json()["totals"]["attempts"] == 3 else None

    summary = await wait_for(counted, timeout=10, message="the calls in the summary")
    assert summary["rows"][0]["period_start"] == day and Decimal(summary["totals"]["charge"]) == Decimal("0.6")
    text = (await client.get(f"/v1/customers/{cid}/summary",
                             params={"from": day, "to": day, "format": "csv"})).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "period_start" and rows[1][0] == day and rows[-1][0] == "total"
    billing = gateway.as_token(await gateway.make_token("billing"))
    made = await client.post(f"/v1/customers/{cid}/invoices", json={"from": day, "to": day}, headers=billing)
    assert made.status_code == 201, made.text
    invoice = made.json()
    assert Decimal(invoice["total"]) == Decimal("0.66") and invoice["currency"] == "EUR"
    assert made.headers["Location"] == f"/v1/invoices/{invoice['id']}"
    again = await client.post(f"/v1/customers/{cid}/invoices", json={"days": [day]}, headers=billing)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert (await client.get(f"/v1/invoices/{invoice['id']}", headers=billing)).json() == invoice
    listed = (await client.get("/v1/invoices", params={"customer_id": cid})).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == invoice["id"]
    bad = await client.post(f"/v1/customers/{cid}/invoices", json={"from": day})
    assert bad.status_code == 422

    async def charged() -> Any:  # the ledger (customer service) counts the calls with 10 % tax
        reply = (await client.get(f"/v1/customers/{cid}/balance")).json()
        return reply if reply["balance"] == "-0.66" else None

    balance = await wait_for(charged, timeout=10, message="the calls on the ledger")
    assert balance["currency"] == "EUR" and balance["charges"] == "0.66"
    assert (await client.get(f"/v1/invoices/{uuid.uuid4()}")).status_code == 404
    lag = (await client.get("/v1/reporting/lag")).json()
    assert any(s["projection"] == "summaries" for s in lag["streams"])


async def test_invoice_documents_settings_void_and_credit_notes(client: Any, gateway: Any) -> None:
    billing = gateway.as_token(await gateway.make_token("billing"))
    operator = gateway.as_token(await gateway.make_token("operator"))
    settings = await client.put("/v1/settings/invoices", headers=billing, json={
        "company_name": "Patchbay Telecom", "company_address": "1 Carrier Street\nBerlin", "due_days": 10,
        "payment_details": "IBAN DE00 1234", "footer": "Thanks"})
    assert settings.status_code == 200 and settings.json()["due_days"] == 10, settings.text
    assert (await client.put("/v1/settings/invoices", headers=operator, json={"due_days": 5})).status_code == 403
    assert (await client.get("/v1/settings/invoices", headers=operator)).status_code == 403
    taken = await client.put("/v1/settings/invoices", headers=billing, json={"next_number": 1})
    assert taken.status_code in (200, 409)  # 409 once an invoice took number 1
    assert (await client.put("/v1/settings/invoices", json={"prefix": "bad prefix!"})).status_code == 422
    cid = (await new_customer(client, tax="10", currency="EUR"))["id"]
    day = await publish_calls(gateway, cid, days_ago=4)

    async def counted() -> bool:
        reply = await client.get(f"/v1/customers/{cid}/summary", params={"from": day, "to": day})
        return bool(reply.json()["totals"]["attempts"] == 3)

    await wait_for(counted, timeout=10, message="the calls in the summary")
    invoice = (await client.post(f"/v1/customers/{cid}/invoices", json={"days": [day]}, headers=billing)).json()
    assert invoice["seller"]["company_name"] == "Patchbay Telecom" and invoice["status"] == "open"
    pdf = await client.get(f"/v1/invoices/{invoice['id']}.pdf", headers=operator)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and invoice["document_number"] in pdf.headers["content-disposition"]
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert invoice["document_number"] in text and "0.66" in text and "Patchbay Telecom" in text
    html = await client.get(f"/v1/invoices/{invoice['id']}.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert invoice["document_number"] in html.text
    assert (await client.get(f"/v1/invoices/{uuid.uuid4()}.pdf")).status_code == 404
    denied = await client.post(f"/v1/invoices/{invoice['id']}/credit-notes", headers=operator,
                               json={"amount": "0.10", "reason": "outage"})
    assert denied.status_code == 403
    note = await client.post(f"/v1/invoices/{invoice['id']}/credit-notes", headers=billing,
                             json={"amount": "0.16", "reason": "outage"})
    assert note.status_code == 201 and note.json()["document_number"].startswith("CN-"), note.text
    too_much = await client.post(f"/v1/invoices/{invoice['id']}/credit-notes", headers=billing,
                                 json={"amount": "1.00", "reason": "outage"})
    assert too_much.status_code == 422
    notes = (await client.get(f"/v1/invoices/{invoice['id']}/credit-notes")).json()
    assert [x["id"] for x in notes["items"]] == [note.json()["id"]]
    after = (await client.get(f"/v1/invoices/{invoice['id']}")).json()
    assert Decimal(after["amount_due"]) == Decimal("0.50")
    void = await client.post(f"/v1/invoices/{invoice['id']}/void", headers=billing, json={"reason": "rates"})
    assert void.status_code == 200 and void.json()["status"] == "void", void.text
    again = await client.post(f"/v1/invoices/{invoice['id']}/void", headers=billing, json={"reason": "rates"})
    assert again.status_code == 409
    listed = (await client.get("/v1/invoices", params={"customer_id": cid, "status": "void"})).json()
    assert [x["id"] for x in listed["items"]] == [invoice["id"]]


async def test_null_in_the_invoice_settings_clears_a_text_or_is_refused(client: Any) -> None:
    """Found by fuzzing: a null footer reached a NOT NULL column and answered 500."""
    cleared = await client.put("/v1/settings/invoices", json={"footer": None})
    assert cleared.status_code == 200 and cleared.json()["footer"] == "", cleared.text
    refused = await client.put("/v1/settings/invoices", json={"due_days": None})
    assert refused.status_code == 422 and "due_days cannot be null" in refused.text, refused.text
