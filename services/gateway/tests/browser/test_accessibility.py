"""axe-core on every console and portal page at 1280 px and at a phone's 390 px: no serious or critical
violation, and at 390 px no sideways scroll of the page (tables scroll inside their own region)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from .a11y import WIDTHS, axe_violations, horizontal_overflow
from .conftest import FakeSwitch, Inbox, Stack, configure_email, sign_in, unique

PASSWORD = "correct horse battery staple"
TOML = '[routing]\nprefix = "44"\nstrip_digits = 0\n'


class Audit:
    """Checks the page as it is at both widths and keeps what it finds, page by page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: dict[str, list[str]] = {}
        self.checked: list[str] = []

    def __call__(self, name: str) -> None:
        """axe at 1280 px, then axe and the page's width at 390 px (back to 1280 px after)."""
        self.page.wait_for_load_state("load")
        found: list[str] = []
        for label, (width, height) in WIDTHS.items():
            self.page.set_viewport_size({"width": width, "height": height})
            found += [f"[{width}px] {v}" for v in axe_violations(self.page)]
            if label == "phone" and (overflow := horizontal_overflow(self.page)):
                found.append(f"[{width}px] the page scrolls sideways: {overflow}")
        self.page.set_viewport_size({"width": 1280, "height": 900})
        self.checked.append(name)
        if found:
            self.problems[name] = found

    def visit(self, name: str, url: str) -> None:
        """Open a page and check it."""
        self.page.goto(url)
        self(name)

    def report(self) -> str:
        """Every problem, by page."""
        return "\n".join(f"{name}:\n  " + "\n  ".join(found) for name, found in self.problems.items())


@pytest.fixture
def audit(browser: Any) -> Iterator[Audit]:
    """An audit of the test's page; fails the test with every problem found."""
    checker = Audit(browser)
    yield checker
    assert not checker.problems, f"accessibility problems on {len(checker.problems)} pages:\n{checker.report()}"


def customer_with_history(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer with a contact, a change with a reason, a payment, a pending sign-up beside it."""
    tag = f"a{uuid.uuid4().hex[:8]}"
    card = stack.create_customer(name=unique("Access Co"), currency="EUR", tags=[tag, "gold"], channels=30,
                                 cps="3", debit_limit="100", config_toml=TOML,
                                 address={"line1": "1 Exchange Street", "city": "Springfield", "country": "GB"})
    stack.create_customer(name=unique("Access Pending"), tags=[tag], status="pending_approval")
    with stack.api() as api:
        reply = api.post(f"/v1/customers/{card['id']}/contacts", json={
            "name": "Ada Access", "email": f"ada-{tag}@example.com", "mobile": "+447700900321",
            "password": PASSWORD, "auto_generate_password": False, "public_notes": "Support: +44 20 7946 0000"})
        assert reply.status_code == 201, reply.text
        contact = reply.json()
        api.patch(f"/v1/customers/{card['id']}", json={"tax": "20"},
                  headers={"X-Audit-Reason": "contract renewal"}).raise_for_status()
        api.post(f"/v1/customers/{card['id']}/payments", json={
            "amount": "25", "currency": "EUR", "reference": f"r-{tag}"}).raise_for_status()
    return card | {"tag": tag}, contact


@pytest.fixture(scope="module")
def seeded(stack: Stack, smtp: tuple[Inbox, int]) -> dict[str, Any]:
    """E-mail set up, a customer with history and contact, an alert rule."""
    configure_email(stack, smtp[1])
    card, contact = customer_with_history(stack)
    with stack.api() as api:
        rule = api.post("/v1/alerts", json={
            "name": unique("a11y asr"), "scope": {"all": True}, "area": "asr", "operator": "lt", "threshold": 30,
            "reset_threshold": 31, "window_minutes": 10, "min_attempts": 30, "level": "warning",
            "actions": {"email_operators": ["noc@carrier.example"]}})
        assert rule.status_code == 201, rule.text
    return {"card": card, "contact": contact, "rule": rule.json()}


def test_sign_in_board_and_bulk_pages_pass_axe(browser: Any, stack: Stack, audit: Audit,
                                               seeded: dict[str, Any]) -> None:
    page, base, card = browser, stack.http, seeded["card"]
    audit.visit("sign-in", f"{base}/console/login")
    page.fill("#f-token", "pb_not_a_token")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors, .field-error").first).to_be_visible()
    audit("sign-in refused")
    sign_in(page, stack)

    audit("board")
    page.click("#columns-chooser summary")
    audit("board with the column chooser open")
    audit.visit("board, nothing matches", f"{base}/console/?q=nothing-matches-{uuid.uuid4().hex}")
    audit.visit("board, pending sign-ups", f"{base}/console/?status=pending_approval&tag={card['tag']}")
    for action, name in (("#bulk-edit", "bulk edit"), ("#send-email", "send e-mail"), ("#send-sms", "send SMS"),
                         ("#bulk-delete", "bulk delete confirmation")):
        page.goto(f"{base}/console/?tag={card['tag']}")
        page.check("#select-all")
        page.click(action)
        audit(name)
    page.goto(f"{base}/console/?tag={card['tag']}")
    page.locator(f"input.row-tick[value='{card['id']}']").check()
    page.click("#send-email")
    page.fill("#f-subject", "Maintenance")
    page.fill("#f-body", "Dear {{contact.name}}, the switch restarts at 02:00 UTC.")
    page.click("#send-message")
    expect(page.locator("#recipient-count")).to_have_text("1")
    audit("message queued")
    page.click("#delivery-link")
    audit("message delivery status")

    audit.visit("bulk upload", f"{base}/console/bulk/upload")
    page.set_input_files("#f-file", files=[{"name": "cards.csv", "mimeType": "text/csv", "buffer": (
        f"name,currency\n{unique('Uploaded')},EUR\n,XXX\n").encode()}])
    page.select_option("#f-mode", "best_effort")
    page.click("#upload")
    expect(page.locator("#upload-results")).to_be_visible()
    audit("bulk upload results")
    assert len(audit.checked) == 14, audit.checked


def test_card_pages_pass_axe(browser: Any, stack: Stack, audit: Audit, seeded: dict[str, Any]) -> None:
    page, base = browser, stack.http
    url = f"{base}/console/customers/{seeded['card']['id']}"
    sign_in(page, stack)
    audit.visit("new customer", f"{base}/console/customers/new")
    page.fill("#f-tax", "150")
    page.click("#save")
    expect(page.locator(".field-error").first).to_be_visible()
    audit("new customer with field errors")

    for period in ("daily", "live", "weekly", "monthly"):
        audit.visit(f"card main, {period}", f"{url}?period={period}")
    audit.visit("card main, may it dial", f"{url}?dial=1&cli=%2B14155550123")
    audit.visit("card edit", f"{url}/edit")
    page.fill("#f-config_toml", "[routing]\nprefix = = 1\n")
    page.click("#save")
    expect(page.locator("#toml-bad-line")).to_be_visible()
    audit("card edit with a TOML error at its line")
    audit.visit("card payments", f"{url}/payments")
    audit.visit("card audit log", f"{url}/audit")
    page.locator(".audit-entry[data-type=CustomerUpdated] summary").first.click()
    audit("card audit log, difference open")
    audit.visit("card as of", f"{url}/as-of")
    assert len(audit.checked) == 13, audit.checked


def test_contact_settings_and_alert_pages_pass_axe(browser: Any, stack: Stack, audit: Audit,
                                                   seeded: dict[str, Any]) -> None:
    page, base, contact = browser, stack.http, seeded["contact"]
    url = f"{base}/console/customers/{seeded['card']['id']}"
    sign_in(page, stack)
    audit.visit("new contact", f"{url}/contacts/new")
    audit.visit("edit contact", f"{url}/contacts/{contact['id']}/edit")
    audit.visit("reset password", f"{url}/contacts/{contact['id']}/password")
    audit.visit("remove contact", f"{url}/contacts/{contact['id']}/remove")
    audit.visit("delete customer", f"{url}/delete")
    audit.visit("unknown customer", f"{base}/console/customers/{uuid.uuid4()}")
    audit.visit("settings", f"{base}/console/settings")
    audit.visit("alerts", f"{base}/console/alerts")
    audit.visit("alert rule", f"{base}/console/alerts/{seeded['rule']['id']}")
    assert len(audit.checked) == 9, audit.checked


def test_list_pages_pass_axe(browser: Any, stack: Stack, audit: Audit, seeded: dict[str, Any]) -> None:
    page, base, card = browser, stack.http, seeded["card"]
    sign_in(page, stack)
    for name, path in (("sent messages", "/console/messages"), ("sent e-mails", "/console/messages?channel=email"),
                       ("audit log", "/console/audit"), ("audit log of a customer", f"/console/audit?customer_id={card['id']}"),
                       ("invoices", "/console/invoices"), ("payments", "/console/payments"),
                       ("test calls", "/console/test-calls")):
        audit.visit(name, base + path)
    assert len(audit.checked) == 7, audit.checked


def test_portal_public_pages_pass_axe(browser: Any, stack: Stack, audit: Audit, seeded: dict[str, Any]) -> None:
    page, base = browser, stack.http
    audit.visit("portal log-in", f"{base}/portal/login")
    page.fill("#f-email", seeded["contact"]["email"])
    page.fill("#f-password", "wrong password 123")
    page.click("#portal-login")
    expect(page.locator(".form-errors")).to_be_visible()
    audit("portal log-in refused")
    audit.visit("portal sign-up, closed", f"{base}/portal/signup")
    with stack.api() as api:
        before = api.get("/v1/settings/signup").json()
        api.put("/v1/settings/signup", json={"enabled": True, "currencies": ["EUR", "GBP"]}).raise_for_status()
    try:
        audit.visit("portal sign-up", f"{base}/portal/signup")
        page.fill("#f-password", "short")
        page.fill("#f-password_again", "different")
        page.click("#signup-submit")
        expect(page.locator(".field-error").first).to_be_visible()
        audit("portal sign-up with errors")
    finally:
        with stack.api() as api:
            api.put("/v1/settings/signup", json={"enabled": before.get("enabled", False),
                                                 "currencies": before.get("currencies") or ["USD"]})
    assert len(audit.checked) == 5, audit.checked


def test_portal_pages_pass_axe(browser: Any, stack: Stack, audit: Audit, seeded: dict[str, Any],
                               switch: FakeSwitch) -> None:
    page, base = browser, stack.http
    page.goto(f"{base}/portal/login")
    page.fill("#f-email", seeded["contact"]["email"])
    page.fill("#f-password", PASSWORD)
    page.click("#portal-login")
    expect(page.locator("#company")).to_be_visible()
    audit("portal company")
    page.fill("#f-number", "+1415555" + str(uuid.uuid4().int)[:4])
    page.click("#start-cli")
    expect(page.locator("#cli-pending")).to_be_visible()
    audit("portal caller ID test call")
    audit.visit("portal balance and invoices", f"{base}/portal/account")
    if page.locator("#topup-start").count():  # shown when PayPal is set up
        page.fill("#f-amount", "12.50")
        page.click("#topup-start")
        audit("portal top-up")
    audit.visit("portal usage", f"{base}/portal/usage")
    audit.visit("portal settings", f"{base}/portal/settings")
    assert len(audit.checked) >= 5, audit.checked
