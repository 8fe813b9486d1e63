"""Settings (e-mail with its test button, tokens) and sending an e-mail to ticked customers, over SMTP."""

from __future__ import annotations

import email
import email.policy
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect
from shared.embedded import free_port

from .conftest import Stack, sign_in, unique


@dataclass
class Inbox:
    """What the local SMTP server received."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message."""
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def wait_for(self, predicate: Any, count: int, timeout_s: float = 30) -> list[Any]:
        """The messages matching predicate, once there are `count` of them (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server (no TLS, no auth)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


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
