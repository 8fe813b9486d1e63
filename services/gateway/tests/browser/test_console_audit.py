"""The Audit log tab (difference side by side), As-of, and contacts on the Main tab."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique


def reload_until(page: Any, selector: str, count: int, timeout_s: float = 20) -> None:
    """Projections are eventually consistent: reload (bounded) until the selector matches count."""
    deadline = time.monotonic() + timeout_s
    while page.locator(selector).count() < count:
        assert time.monotonic() < deadline, f"{selector} never reached {count}"
        time.sleep(0.3)
        page.reload()


def test_audit_difference_view_and_as_of(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Audited"), tax="1", tags=["bronze"])
    with stack.api() as api:
        reply = api.patch(f"/v1/customers/{card['id']}", json={"tax": "2.5", "tags": ["gold"]},
                          headers={"X-Audit-Reason": "promotion"})
        assert reply.status_code == 200
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{card['id']}")
    page.click("#tab-audit")
    reload_until(page, ".audit-entry", 2)
    update = page.locator(".audit-entry[data-type=CustomerUpdated]")
    expect(update.locator(".audit-reason")).to_have_text("promotion")
    expect(update).to_contain_text("admin")
    update.locator("summary", has_text="View difference").click()
    rows = update.locator("tr.changed")
    fields = [rows.nth(i).get_attribute("data-field") for i in range(rows.count())]
    old = {f: json.loads(update.locator(f"tr[data-field={f}] pre.diff-old").inner_text()) for f in fields}
    new = {f: json.loads(update.locator(f"tr[data-field={f}] pre.diff-new").inner_text()) for f in fields}
    assert old == {"tax": "1", "tags": ["bronze"]}
    assert new == {"tax": "2.5", "tags": ["gold"]}
    expect(update.locator("pre.diff-old").first).to_be_visible()
    expect(update.locator("pre.diff-new").first).to_be_visible()

    # the card as it was right after creation
    page.locator(".audit-entry[data-type=CustomerCreated] a", has_text="card as of then").click()
    expect(page.locator("#asof-card dd[data-key=tax]")).to_have_text("1")
    expect(page.locator("#asof-card dd[data-key=tags]")).to_have_text("bronze")


def test_contacts_add_edit_reset_and_remove(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Contacted"))
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{card['id']}")
    page.click("#add-contact")
    email = f"ops-{card['id'][:8]}@example.com"
    page.fill("#f-name", "Ops Desk")
    page.fill("#f-email", email)
    page.fill("#f-mobile", "12345")
    page.check("input[name=password_mode][value=manual]")
    page.fill("#f-password", "short")
    page.click("#save-contact")
    expect(page.locator(".field-error[data-field=mobile]")).to_be_visible()
    expect(page.locator(".field-error[data-field=password]")).to_be_visible()

    page.fill("#f-mobile", "+447700900123")
    page.check("input[name=password_mode][value=manual]")
    page.fill("#f-password", "a long enough secret 1")
    page.click("#save-contact")
    expect(page.locator("#notice")).to_have_text("Contact saved.")
    row = page.locator("#contacts tr", has_text=email)
    expect(row).to_contain_text("+447700900123")

    row.locator("a", has_text="Edit").click()
    page.fill("#f-public_notes", "Call before 5pm")
    page.click("#save-contact")
    expect(page.locator("#notice")).to_have_text("Contact saved.")

    page.locator("#contacts tr", has_text=email).locator("a", has_text="Password").click()
    page.click("#reset-password")  # auto-generate and e-mail
    expect(page.locator("#notice")).to_have_text("Password reset.")

    page.locator("#contacts tr", has_text=email).locator("a", has_text="Remove").click()
    page.click("#confirm-remove")
    expect(page.locator("#notice")).to_have_text("Contact removed.")
    expect(page.locator("#contacts tr", has_text=email)).to_have_count(0)
    with stack.api() as api:
        assert api.get(f"/v1/customers/{card['id']}").json()["contacts"] == []
