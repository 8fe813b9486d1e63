"""The customer portal: log in, the company and its notes, e-mail verification, the CLI test-call flow."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import FakeSwitch, Inbox, Stack, configure_email, unique

PASSWORD = "correct horse battery staple"


def make_contact(stack: Stack, **verification: bool) -> tuple[dict[str, Any], str]:
    """A customer with one contact whose password we know."""
    card = stack.create_customer(name=unique("Portal Co"), verification=verification)
    address = f"portal-{uuid.uuid4().hex[:8]}@example.com"
    with stack.api() as api:
        reply = api.post(f"/v1/customers/{card['id']}/contacts", json={
            "name": "Pat Portal", "email": address, "mobile": "+447700900456", "password": PASSWORD,
            "auto_generate_password": False, "public_notes": "Support line: +44 20 7946 0000"})
        assert reply.status_code == 201, reply.text
    return card, address


def log_in(page: Any, stack: Stack, address: str, password: str = PASSWORD) -> None:
    """Through the portal's login form."""
    page.goto(f"{stack.http}/portal/")
    page.fill("#f-email", address)
    page.fill("#f-password", password)
    page.click("#portal-login")


def test_portal_login_company_and_the_cli_test_call_flow(
    browser: Any, stack: Stack, switch: FakeSwitch
) -> None:
    card, address = make_contact(stack, approved_clis_only=True)
    page = browser
    log_in(page, stack, address, "wrong password 123")
    expect(page.locator(".form-errors")).to_be_visible()

    log_in(page, stack, address)
    expect(page.locator("#company")).to_have_text(card["name"])
    expect(page.locator("#public-notes")).to_have_text("Support line: +44 20 7946 0000")
    cookie = next(c for c in page.context.cookies() if c["name"] == "pb_portal")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

    page.fill("#f-number", "not a number")
    page.click("#start-cli")
    expect(page.locator(".field-error[data-field=number]")).to_be_visible()

    number = "+1415555" + str(uuid.uuid4().int)[:4]
    page.fill("#f-number", number)
    page.click("#start-cli")
    expect(page.locator("#cli-pending")).to_contain_text(number)
    code = switch.code_for(number)
    wrong = "000000" if code != "000000" else "111111"
    page.fill("#cli-code", wrong)
    page.click("#confirm-cli")
    expect(page.locator(".form-errors")).to_be_visible()
    page.fill("#cli-code", code)
    page.click("#confirm-cli")
    expect(page.locator("#notice")).to_have_text("The caller ID is approved.")

    def approved() -> bool:
        page.reload()
        return number in page.locator("#approved-clis").inner_text()

    for _ in range(50):  # the outcome reaches the customer by an event: bounded wait
        if approved():
            break
        page.wait_for_timeout(200)
    expect(page.locator("#approved-clis")).to_contain_text(number)
    with stack.api() as api:
        assert number in api.get(f"/v1/customers/{card['id']}").json()["approved_clis"]

    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/portal/login$"))
    page.goto(f"{stack.http}/portal/home")
    expect(page).to_have_url(re.compile(r"/portal/login"))


def test_portal_email_verification_with_the_code_from_the_email(
    browser: Any, stack: Stack, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    configure_email(stack, port)
    _, address = make_contact(stack, email_required=True)
    page = browser
    log_in(page, stack, address)
    expect(page.locator("#email-status")).to_have_text("not verified")
    page.click("#send-email-code")
    expect(page.locator("#code-sent")).to_contain_text(address)
    mails = inbox.wait_for(lambda m: m["To"] == address, 1)
    assert mails, "no verification e-mail"
    text = mails[-1].get_body(("plain",)).get_content()
    code = re.search(r"\b(\d{6})\b", text)
    assert code, text
    page.fill("#email-code", code.group(1))
    page.click("#confirm-email-code")
    expect(page.locator("#notice")).to_have_text("Your e-mail address is verified.")
