"""The portal's account pages in chromium: balance, invoice download, usage, password change."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from shared import bus

from .conftest import Stack, unique
from .test_portal import log_in

PASSWORD = "correct horse battery staple"


def publish_call(stack: Stack, customer_id: str, day: datetime, charge: str) -> None:
    """One answered call record on CALLS (from a thread: Playwright owns the main loop)."""

    async def send() -> None:
        nc = await bus.connect(stack.nats_url, "provisioner")
        start = day.replace(hour=9, minute=0, second=0, microsecond=0).isoformat()
        await nc.jetstream().publish(f"calls.cdr.{customer_id}", json.dumps({
            "call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": start,
            "answered_at": start, "ended_at": start, "duration_s": 90, "billed_duration_s": 120,
            "charge": charge, "cost": "0.1", "disposition": "answered", "sip_code": 200, "pdd_ms": 800}).encode())
        await nc.drain()

    thread = threading.Thread(target=lambda: asyncio.run(send()))
    thread.start()
    thread.join(30)


def invoiced_customer(stack: Stack) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A customer with a contact, one invoiced day of calls and a payment."""
    card = stack.create_customer(name=unique("Account Co"), currency="EUR", debit_limit="10")
    address = f"acct-{uuid.uuid4().hex[:8]}@example.com"
    day = datetime.now(UTC) - timedelta(days=2)
    publish_call(stack, card["id"], day, "3.2500")
    with stack.api() as api:
        reply = api.post(f"/v1/customers/{card['id']}/contacts", json={
            "name": "Ann Account", "email": address, "password": PASSWORD, "auto_generate_password": False})
        assert reply.status_code == 201, reply.text
        invoice: dict[str, Any] = {}
        for _ in range(100):  # the call reaches reporting by the stream: bounded wait
            made = api.post(f"/v1/customers/{card['id']}/invoices", json={"days": [day.date().isoformat()]})
            if made.status_code == 201:
                invoice = made.json()
                break
            threading.Event().wait(0.1)
        assert invoice, "the call was never invoiced"
        paid = api.post(f"/v1/customers/{card['id']}/payments", json={
            "amount": "50", "currency": "EUR", "reference": f"r-{uuid.uuid4().hex[:6]}"})
        assert paid.status_code == 201, paid.text
    return card, address, invoice


def test_portal_balance_invoice_download_usage_and_password_change(browser: Any, stack: Stack) -> None:
    card, address, invoice = invoiced_customer(stack)
    page = browser
    log_in(page, stack, address, PASSWORD)
    page.click("#nav-account")
    expect(page.locator("#balance-value")).to_have_text("€46.75")  # 50 paid - 3.25 charged
    expect(page.locator("#available-value")).to_have_text("€56.75")
    expect(page.locator("#invoices")).to_contain_text(invoice["document_number"])
    with page.expect_download() as download:
        page.click(".invoice-pdf")
    content = open(download.value.path(), "rb").read()
    assert content.startswith(b"%PDF-") and invoice["document_number"] in download.value.suggested_filename

    page.click("#nav-usage")
    expect(page.locator("#usage-table tfoot")).to_contain_text("3.25")
    assert "Cost" not in page.locator("#usage-table").inner_text()

    other = httpx.post(f"{stack.http}/portal/v1/login", json={"email": address, "password": PASSWORD}).json()
    page.click("#nav-settings")
    page.fill("#f-current_password", "not my password")
    page.fill("#f-new_password", "a brand new password")
    page.fill("#f-new_password_again", "a brand new password")
    page.click("#change-password")
    # each try checks a password hash (argon2id, 64 MiB): seconds on a busy machine
    expect(page.locator(".form-errors, .field-error").first).to_be_visible(timeout=30_000)
    page.fill("#f-current_password", PASSWORD)
    page.fill("#f-new_password", "a brand new password")
    page.fill("#f-new_password_again", "a brand new password")
    page.click("#change-password")
    expect(page.locator("#notice")).to_contain_text("password is changed", timeout=30_000)
    page.fill("#f-threshold", "12.50")
    page.click("#save-alert")
    expect(page.locator("#notice")).to_have_text("Saved.")
    expect(page.locator("#f-threshold")).to_have_value("12.50")
    # this browser goes on with its fresh session; the other session ended
    page.click("#nav-account")
    expect(page.locator("#balance-value")).to_be_visible()
    ended = httpx.get(f"{stack.http}/portal/v1/me", headers={"Authorization": f"Bearer {other['token']}"})
    assert ended.status_code == 401
    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/portal/login$"))
    log_in(page, stack, address, "a brand new password")
    expect(page.locator("#company")).to_have_text(card["name"])


def test_sign_up_in_the_portal_then_approval_from_the_board(browser: Any, stack: Stack) -> None:
    page = browser
    page.goto(f"{stack.http}/portal/signup")
    expect(page.locator("#signup-closed")).to_be_visible()  # off by default
    with stack.api() as api:
        assert api.put("/v1/settings/signup", json={"enabled": True, "currencies": ["EUR", "GBP"]}).status_code == 200
    company = unique("Sign Co")
    email = f"sign-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(f"{stack.http}/portal/login")
    page.click("#signup-link")
    page.fill("#f-company", company)
    page.fill("#f-contact_name", "Sue Signer")
    page.fill("#f-email", email)
    page.fill("#f-password", "signing up is easy")
    page.fill("#f-password_again", "signing up is easy")
    page.select_option("#f-currency", "GBP")
    page.click("#signup-submit")
    expect(page.locator("#signup-done")).to_be_visible()
    with stack.api() as api:
        found = api.get("/v1/customers", params={"q": company, "status": "pending_approval"}).json()["items"]
    assert len(found) == 1 and found[0]["currency"] == "GBP"
    cid = found[0]["id"]

    page.goto(f"{stack.http}/console/login")
    page.fill("#f-token", stack.token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/(\?.*)?$"))
    page.click("#pending-signups")
    page.check(f"input.row-tick[value='{cid}']")
    page.click("#approve-signups")
    page.goto(f"{stack.http}/console/customers/{cid}")
    expect(page.locator("#status-panel")).to_contain_text("active")
    with stack.api() as api:
        for _ in range(100):  # the audit log is a projection: bounded wait
            audit = api.get(f"/v1/customers/{cid}/audit", params={"type": "CustomerStatusChanged"}).json()
            if audit["total"]:
                break
            threading.Event().wait(0.1)
        assert audit["items"][0]["reason"] == "sign-up approved" and audit["items"][0]["actor"]["kind"] == "operator"
        api.put("/v1/settings/signup", json={"enabled": False, "currencies": ["USD"]})
    log_in(page, stack, email, "signing up is easy")
    expect(page.locator("#company")).to_have_text(company)
