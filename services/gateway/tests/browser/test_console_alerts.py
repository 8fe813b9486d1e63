"""The Alerts page: rules made, refused, paused and deleted from the form, by keyboard, at phone width;
firings listed there and the latest on the card's Main tab."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import expect

from shared import bus

from .conftest import Stack, sign_in, unique


def publish_failed_calls(stack: Stack, customer_id: str, n: int) -> None:
    """n unanswered call records of a customer, as the switch sends them."""

    async def send() -> None:
        nc = await bus.connect(stack.nats_url, "provisioner")
        js = nc.jetstream()
        now = datetime.now(UTC).isoformat()
        for _ in range(n):
            await js.publish(f"calls.cdr.{customer_id}", json.dumps({
                "call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": now, "ended_at": now,
                "duration_s": 0, "billed_duration_s": 0, "charge": "0", "cost": "0",
                "disposition": "failed"}).encode())
        await nc.close()

    with ThreadPoolExecutor(1) as pool:  # playwright's sync API holds this thread's event loop
        pool.submit(asyncio.run, send()).result(timeout=30)


def test_rules_from_the_form_by_keyboard_then_a_firing_on_the_card(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Alerted"), tags=["watch"])
    page = browser
    sign_in(page, stack)
    page.click("nav >> text=Alerts")
    expect(page.locator("h1")).to_have_text("Alerts")

    name = unique("ASR floor")
    page.focus("#f-name")
    page.keyboard.type(name)
    page.select_option("#f-scope_kind", "tag")
    page.fill("#f-scope_value", "watch")
    page.fill("#f-threshold", "101")
    page.focus("#f-threshold")
    page.keyboard.press("Enter")  # submits the form
    expect(page.locator(".form-errors")).to_contain_text("0 to 100")
    expect(page.locator("#f-name")).to_have_value(name)  # what was typed is kept

    page.fill("#f-threshold", "50")
    page.fill("#f-window_minutes", "0")
    page.keyboard.press("Enter")
    expect(page.locator("#err-window_minutes")).to_be_visible()
    page.fill("#f-window_minutes", "10")
    page.fill("#f-min_attempts", "5")
    page.check("input[name=email_contacts]")
    page.click("#save-rule")
    expect(page.locator("#notice")).to_have_text("Rule created.")
    row = page.locator(f"#rule-list tr[data-rule='{name}']")
    expect(row).to_contain_text("tag watch")
    expect(row).to_contain_text("asr below 50")

    publish_failed_calls(stack, card["id"], 6)
    deadline = time.monotonic() + 20
    page.goto(f"{stack.http}/console/customers/{card['id']}")
    while "none" in page.locator("#latest-alert").inner_text():
        assert time.monotonic() < deadline, "no firing on the card"
        time.sleep(0.3)
        page.reload()
    expect(page.locator("#latest-alert")).to_contain_text(name)
    expect(page.locator("#latest-alert")).to_contain_text("asr 0.00 % below 50.00 %")
    page.click("#latest-alert >> text=all firings")
    expect(page.locator("#firing-list tbody tr").first).to_contain_text(name)

    # at phone width the page does not scroll sideways, and the rule can be paused and deleted
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{stack.http}/console/alerts")
    too_wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.table-wrap')))
        .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)""")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), too_wide
    row = page.locator(f"#rule-list tr[data-rule='{name}']")
    row.locator("button", has_text="Pause").click()
    expect(page.locator("#notice")).to_have_text("Rule paused.")
    expect(page.locator(f"#rule-list tr[data-rule='{name}']")).to_contain_text("paused")
    page.locator(f"#rule-list tr[data-rule='{name}'] button", has_text="Delete").click()
    expect(page.locator(f"#rule-list tr[data-rule='{name}']")).to_have_count(0)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_viewer_sees_no_alerts(browser: Any, stack: Stack) -> None:
    with stack.api() as api:
        token = api.post("/v1/tokens", json={"name": unique("viewer"), "role": "viewer"}).json()["token"]
    page = browser
    sign_in(page, stack, token)
    expect(page.locator("nav >> text=Alerts")).to_have_count(0)
    page.goto(f"{stack.http}/console/alerts")
    expect(page.locator("body")).to_contain_text("Alerts are for operators and admins.")
