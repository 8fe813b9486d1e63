"""The cross-customer pages: sent messages, the global audit log, invoices, payments; filters, paging, roles."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from .a11y import page_problems
from .conftest import Stack, sign_in, unique
from .test_portal_account import publish_call

WIDTHS = (1280, 390)


def reload_until(page: Any, selector: str, count: int, timeout_s: float = 30) -> None:
    """The lists read eventually consistent projections: reload (bounded) until selector matches count."""
    deadline = time.monotonic() + timeout_s
    while page.locator(selector).count() != count:
        assert time.monotonic() < deadline, f"{selector}: {page.locator(selector).count()}, not {count}"
        time.sleep(0.3)
        page.reload()


def submit(page: Any, form: str, *expected: str) -> None:
    """Submit a filter form and wait (bounded) until the page at its new address is shown."""
    page.click(f"{form} button[type=submit]")
    page.wait_for_url(lambda url: all(part in url for part in expected))
    page.wait_for_load_state()


def fits(page: Any, width: int) -> None:
    """At this width: no serious axe-core violation, and no sideways scrolling but inside tables."""
    page.set_viewport_size({"width": width, "height": 900})
    problems = page_problems(page)
    assert not problems, problems


def with_contact(stack: Stack, name: str) -> dict[str, Any]:
    """A customer with one contact that has an e-mail address and a mobile number."""
    card = stack.create_customer(name=unique(name))
    with stack.api() as api:
        reply = api.post(f"/v1/customers/{card['id']}/contacts", json={
            "name": "Nora Notified", "email": f"n-{uuid.uuid4().hex[:6]}@example.com",
            "mobile": "+447700900123", "auto_generate_password": False,
            "password": "correct horse battery staple"})
        assert reply.status_code == 201, reply.text
    return card


def test_sent_messages_filter_by_customer_and_channel_with_recipients(
        browser: Any, stack: Stack, smtp: Any) -> None:
    _inbox, port = smtp
    card = with_contact(stack, "Messaged")
    with stack.api() as api:
        assert api.put("/v1/settings/email", json={
            "from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": port,
            "security": "none"}).status_code == 200
        assert api.put("/v1/settings/sms", json={  # nothing answers there: the SMS stays retrying
            "account_sid": "AC123", "auth_token": "t", "from_number": "+15005550006",
            "api_base_url": "https://127.0.0.1:9"}).status_code == 200
        for body in ({"channel": "email", "subject": "Maintenance tonight", "body": "Dear {{contact.name}}"},
                     {"channel": "sms", "body": "Maintenance at 02:00 UTC"}):
            sent = api.post("/v1/messages", json={**body, "customer_ids": [card["id"]]})
            assert sent.status_code == 202, sent.text
    page = browser
    sign_in(page, stack)
    page.click("nav >> text=Messages")
    page.fill("#f-customer", card["name"])
    submit(page, "#message-filters", "customer=")
    reload_until(page, "#message-list tr[data-message]", 2)
    page.select_option("#f-channel", "sms")
    submit(page, "#message-filters", "channel=sms")
    expect(page.locator("#message-list tr[data-message]")).to_have_count(1)
    expect(page.locator("#message-list tr[data-channel=sms]")).to_have_count(1)
    page.select_option("#f-channel", "email")
    submit(page, "#message-filters", "channel=email")
    expect(page.locator("#message-list tr[data-channel=email]")).to_have_count(1)
    expect(page.locator("#message-list")).to_contain_text("Maintenance tonight")
    expect(page.locator("#message-list td").first).to_contain_text("UTC")
    page.click("#message-list a:has-text('Maintenance tonight')")
    expect(page.locator("#deliveries")).to_contain_text(card["name"])  # per recipient, with its customer
    for width in WIDTHS:
        page.goto(f"{stack.http}/console/messages")
        fits(page, width)


def test_global_audit_log_filters_by_event_type_and_customer_and_pages(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Audited Globally"))
    with stack.api() as api:
        for status in ("inactive", "active", "inactive"):
            reply = api.post(f"/v1/customers/{card['id']}/status", json={"status": status})
            assert reply.status_code == 200, reply.text
        for n in range(3):
            api.patch(f"/v1/customers/{card['id']}", json={"tax": str(n + 1)})
    page = browser
    sign_in(page, stack)
    page.click("nav >> text=Audit log")
    page.wait_for_url(lambda url: url.endswith("/console/audit"))
    page.fill("#f-customer", card["id"])
    page.fill("#f-type", "status changed")
    submit(page, "#global-audit-filters", "type=status")
    reload_until(page, ".audit-entry", 3)
    types = page.locator(".audit-entry").evaluate_all("els => els.map(e => e.dataset.type)")
    assert set(types) == {"CustomerStatusChanged"}, types
    page.fill("#f-type", "")  # the whole customer: created, 3 status changes, 3 updates; paged by 25
    submit(page, "#global-audit-filters", "type=&")
    reload_until(page, ".audit-entry", 7)
    # across customers, filtered by type only
    page.goto(f"{stack.http}/console/audit?type=customer+status+changed")
    types = page.locator(".audit-entry").evaluate_all("els => els.map(e => e.dataset.type)")
    assert types and set(types) == {"CustomerStatusChanged"}, types
    page.goto(f"{stack.http}/console/audit?type=no+such+thing")
    expect(page.locator(".field-error[data-field=type]")).to_contain_text("no event type")
    for width in WIDTHS:
        page.goto(f"{stack.http}/console/audit")
        fits(page, width)


@pytest.mark.timeout(300)  # 26 changes on a busy machine
def test_global_audit_pages_forward_and_back(browser: Any, stack: Stack) -> None:
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/audit")
    if page.locator("#audit-next").count() == 0:  # fewer than a page in the whole log: make more
        card = stack.create_customer(name=unique("Paged"))
        with stack.api() as api:
            for n in range(26):
                api.patch(f"/v1/customers/{card['id']}", json={"tax": str(n + 1)})
        reload_until(page, "#audit-next", 1)
    first = page.locator(".audit-entry").first.get_attribute("data-event")
    page.click("#audit-next")
    page.wait_for_url(lambda url: "cursor=" in url)
    expect(page.locator("#audit-previous")).to_be_visible()
    assert page.locator(".audit-entry").first.get_attribute("data-event") != first
    page.click("#audit-previous")
    page.wait_for_url(lambda url: "cursor=" not in url)
    expect(page.locator(".audit-entry").first).to_have_attribute("data-event", first)
    expect(page.locator("#audit-previous")).to_have_count(0)


def invoices_of(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A customer (JPY: no minor units) with two invoiced days; the second invoice voided."""
    card = stack.create_customer(name=unique("Invoiced"), currency="JPY", debit_limit="1000")
    days = [datetime.now(UTC) - timedelta(days=d) for d in (3, 2)]
    for day in days:
        publish_call(stack, card["id"], day, "1234.5")
    made: list[dict[str, Any]] = []
    with stack.api() as api:
        for day in days:
            for _ in range(150):  # the call reaches reporting by the stream: bounded wait
                reply = api.post(f"/v1/customers/{card['id']}/invoices", json={"days": [day.date().isoformat()]})
                if reply.status_code == 201:
                    made.append(reply.json())
                    break
                threading.Event().wait(0.1)
        assert len(made) == 2, "the calls were never invoiced"
        voided = api.post(f"/v1/invoices/{made[1]['id']}/void", json={"reason": "sent twice"})
        assert voided.status_code == 200, voided.text
    return card, made[0], made[1]


@pytest.mark.timeout(300)  # two days of calls projected and invoiced
def test_invoices_across_customers_filter_by_status_with_pdf_and_money(browser: Any, stack: Stack) -> None:
    card, kept, voided = invoices_of(stack)
    page = browser
    sign_in(page, stack)
    page.click("nav >> text=Invoices")
    page.fill("#f-customer", card["name"])
    submit(page, "#invoice-filters", "customer=")
    reload_until(page, "#invoice-list tr[data-invoice]", 2)
    page.select_option("#f-status", "void")
    submit(page, "#invoice-filters", "status=void")
    expect(page.locator("#invoice-list tr[data-invoice]")).to_have_count(1)
    expect(page.locator(f"#invoice-list tr[data-invoice='{voided['id']}']")).to_have_attribute("data-status", "void")
    page.select_option("#f-status", "open")
    submit(page, "#invoice-filters", "status=open")
    row = page.locator(f"#invoice-list tr[data-invoice='{kept['id']}']")
    expect(row).to_be_visible()
    expect(page.locator("#invoice-list tr[data-invoice]")).to_have_count(1)
    expect(row.locator("td.num").first).to_have_text(f"¥{round(float(kept['total'])):,}")  # yen: no decimals
    with page.expect_download() as download:
        row.locator(".invoice-pdf").click()
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"
    row.locator("td a").first.click()
    expect(page).to_have_url(f"{stack.http}/console/customers/{card['id']}")
    for width in WIDTHS:
        page.goto(f"{stack.http}/console/invoices")
        fits(page, width)


def test_payments_across_customers_filter_by_customer_and_method(browser: Any, stack: Stack) -> None:
    first = stack.create_customer(name=unique("Payer One"), currency="EUR")
    second = stack.create_customer(name=unique("Payer Two"), currency="USD")
    with stack.api() as api:
        for card, amount, method in ((first, "12.5", "bank_transfer"), (first, "3", "card"),
                                     (second, "1000", "bank_transfer")):
            reply = api.post(f"/v1/customers/{card['id']}/payments", json={
                "amount": amount, "currency": card["currency"], "method": method,
                "reference": f"p-{uuid.uuid4().hex[:8]}"})
            assert reply.status_code == 201, reply.text
    page = browser
    sign_in(page, stack)
    page.click("nav >> text=Payments")
    expect(page.locator(f"#payment-list tr[data-customer='{second['id']}']")).to_have_count(1)
    page.fill("#f-customer", first["name"])
    submit(page, "#payment-filters", "customer=")
    rows = page.locator("#payment-list tr[data-payment]")
    expect(rows).to_have_count(2)
    expect(page.locator(f"#payment-list tr[data-customer='{first['id']}']")).to_have_count(2)
    expect(page.locator("#payment-list")).to_contain_text("€12.50")
    page.select_option("#f-method", "card")
    submit(page, "#payment-filters", "method=card")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("€3.00")
    with page.expect_download() as download:
        page.click("#payments-csv")
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.startswith("customer_id,") and text.count("\n") == 2 and ",card," in text
    page.goto(f"{stack.http}/console/payments?customer={second['id']}")
    expect(page.locator("#payment-list")).to_contain_text("$1,000.00")
    page.goto(f"{stack.http}/console/customers/{first['id']}/payments")  # the card's tab: its own CSV
    with page.expect_download() as download:
        page.click("a:has-text('CSV')")
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.startswith("customer_id,") and text.count("\n") == 3 and first["id"] in text, text
    for width in WIDTHS:
        page.goto(f"{stack.http}/console/payments")
        fits(page, width)


def test_roles_see_only_their_pages(browser: Any, stack: Stack) -> None:
    page = browser
    sign_in(page, stack, stack.create_token("viewer"))
    nav = page.locator("header nav")
    expect(nav.locator("text=Messages")).to_be_visible()
    expect(nav.locator("text=Invoices")).to_be_visible()
    for hidden in ("Payments", "Audit log", "Test calls"):
        expect(nav.locator(f"text={hidden}")).to_have_count(0)
    for path in ("/console/payments", "/console/audit", "/console/test-calls"):
        response = page.goto(f"{stack.http}{path}")
        assert response is not None and response.status == 403, path
    # an admin outside demo mode: no simulated switch, so no codes
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/test-calls")
    expect(page.locator("#no-demo-switch")).to_be_visible()
    fits(page, 390)
