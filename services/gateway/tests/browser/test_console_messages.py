"""Settings (e-mail with its test button, tokens) and sending an e-mail to ticked customers, over SMTP."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique


def configure_email(page: Any, stack: Stack, port: int) -> None:
    """Save the e-mail settings through the Settings page."""
    page.goto(f"{stack.http}/console/settings")
    page.fill("#f-from_address", "noc@carrier.example")
    page.fill("#f-from_name", "Carrier NOC")
    page.fill("#f-smtp_host", "127.0.0.1")
    page.fill("#f-smtp_port", str(port))
    page.select_option("#f-security", "none")
    page.click("#save-email")
    expect(page.locator("#notice")).to_have_text("E-mail settings saved.")


def test_email_settings_test_button_and_field_errors(browser: Any, stack: Stack, smtp: Any) -> None:
    inbox, port = smtp
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/settings")
    page.fill("#f-from_address", "not an address")
    page.fill("#f-smtp_host", "127.0.0.1")
    page.click("#save-email")
    expect(page.locator(".field-error[data-field=from_address]")).to_be_visible()

    configure_email(page, stack, port)
    to = f"test-{uuid.uuid4().hex[:6]}@example.com"
    page.fill("#f-email_to", to)
    page.click("#test-email")
    expect(page.locator("#email-test-result")).to_contain_text("Delivered")
    assert inbox.wait_for(lambda m: m["To"] == to, 1)


def test_sending_an_email_to_ticked_customers(browser: Any, stack: Stack, smtp: Any) -> None:
    inbox, port = smtp
    tag = f"m{uuid.uuid4().hex[:8]}"
    with_contact = stack.create_customer(name=unique("Mailed"), tags=[tag])
    without = stack.create_customer(name=unique("Silent"), tags=[tag])
    address = f"billing-{uuid.uuid4().hex[:6]}@example.com"
    with stack.api() as api:
        reply = api.post(f"/v1/customers/{with_contact['id']}/contacts", json={
            "name": "Bill Ing", "email": address, "auto_generate_password": False,
            "password": "correct horse battery staple"})
        assert reply.status_code == 201, reply.text
    page = browser
    sign_in(page, stack)
    configure_email(page, stack, port)

    page.goto(f"{stack.http}/console/?tag={tag}")
    page.click("#send-email")  # nothing ticked: said so, nothing sent
    expect(page.locator(".form-errors")).to_contain_text("Tick at least one customer")

    page.goto(f"{stack.http}/console/?tag={tag}")
    page.check("#select-all")
    page.click("#send-email")
    expect(page.locator("#selection-summary")).to_contain_text("2 ticked customers")
    page.fill("#f-subject", "Maintenance for {{customer.name}}")
    page.fill("#f-body", "Dear {{contact.name}}, the switch restarts at 02:00 UTC.")
    page.click("#send-message")
    expect(page.locator("#recipient-count")).to_have_text("1")
    expect(page.locator("#skipped-list")).to_contain_text(without["name"])

    got = inbox.wait_for(lambda m: m["To"] == address, 1)
    assert len(got) == 1, "the e-mail never reached the SMTP server"
    message = got[0]
    assert message["Subject"] == f"Maintenance for {with_contact['name']}"
    assert "Dear Bill Ing, the switch restarts" in message.get_body(("plain",)).get_content()
    assert "noc@carrier.example" in message["From"]

    page.click("#delivery-link")
    expect(page.locator("#deliveries")).to_contain_text(address)
