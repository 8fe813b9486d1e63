"""By keyboard alone: Tab reaches the board's and the card's main actions, each with a visible focus ring,
and Enter follows them."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique
from .test_portal_account import publish_call

FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    return {
        id: el.id, tag: el.tagName.toLowerCase(), cls: String(el.className || ''),
        name: (el.getAttribute('aria-label') || el.innerText || el.value || '').trim().slice(0, 50),
        ring: el.matches(':focus-visible, :focus-within') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
        shown: box.width > 0 && box.height > 0,
    };
}"""


def tab_through(page: Any, limit: int = 200) -> list[dict[str, Any]]:
    """Every element Tab visits from the top of the page, once round."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now is None or (seen and now == seen[0]):
            break
        seen.append(now)
    return seen


def describe(stop: dict[str, Any]) -> str:
    """An element for a failure message."""
    return f"{stop['tag']}#{stop['id']}.{stop['cls']} '{stop['name']}'"


def check_rings(stops: list[dict[str, Any]]) -> None:
    """Every stop is on screen with a ring of at least 2 px."""
    bad = [describe(s) for s in stops if not (s["ring"] and s["shown"])]
    assert not bad, f"focused without a visible ring: {bad}"


def press_tab_until(page: Any, predicate: Any, limit: int = 200) -> dict[str, Any]:
    """Tab from the top until the focused element matches."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now and predicate(now):
            return dict(now)
    raise AssertionError("Tab never reached the element")


def test_tab_reaches_the_board_and_card_actions_with_a_visible_ring(browser: Any, stack: Stack) -> None:
    tag = f"k{uuid.uuid4().hex[:8]}"
    card = stack.create_customer(name=unique("Keyed"), tags=[tag], channels=4, debit_limit="100")
    stack.create_customer(name=unique("Keyed Too"), tags=[tag])
    with stack.api() as api:
        api.post(f"/v1/customers/{card['id']}/contacts", json={
            "name": "Kim Keys", "email": f"kim-{tag}@example.com", "password": "correct horse battery staple",
            "auto_generate_password": False}).raise_for_status()
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")

    stops = tab_through(page)
    ids = {s["id"] for s in stops}
    for wanted in ("new-customer", "export-all", "f-q", "f-tag", "apply-filters", "pending-signups", "all-matching",
                   "bulk-edit", "send-email", "send-sms", "bulk-delete", "export-selected", "select-all"):
        assert wanted in ids, f"Tab never reaches #{wanted}: {[describe(s) for s in stops]}"
    assert any(s["tag"] == "summary" and s["name"] == "Columns" for s in stops), "the column chooser"
    assert sum("row-tick" in s["cls"] for s in stops) == 2 and sum("card-link" in s["cls"] for s in stops) == 2
    check_rings(stops)

    # the column chooser opens with the keyboard, and a row is ticked with Space
    press_tab_until(page, lambda s: s["tag"] == "summary")
    page.keyboard.press("Enter")
    expect(page.locator("#columns-chooser")).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    assert "col-toggle" in page.evaluate(FOCUSED)["cls"]
    page.keyboard.press("Escape")
    press_tab_until(page, lambda s: "row-tick" in s["cls"])
    page.keyboard.press("Space")
    expect(page.locator("#selected-count")).to_have_text("1 selected")

    # Enter on the customer's name opens the card
    press_tab_until(page, lambda s: s["name"] == card["name"])
    page.keyboard.press("Enter")
    expect(page.locator("#card-name")).to_have_text(card["name"])

    stops = tab_through(page)
    ids = {s["id"] for s in stops}
    for wanted in ("tab-main", "tab-edit", "tab-payments", "tab-audit", "tab-asof", "f-status", "f-reason",
                   "change-status", "delete-customer", "f-cli", "check-dial", "add-contact"):
        assert wanted in ids, f"Tab never reaches #{wanted} on the card: {[describe(s) for s in stops]}"
    assert any(s["name"] == "Reset password of Kim Keys" for s in stops), "the password action"
    check_rings(stops)

    # the dial check by keyboard: type, Enter, read the answer
    press_tab_until(page, lambda s: s["id"] == "f-cli")
    page.keyboard.press("Enter")
    expect(page.locator("#dial-answer")).to_have_text("Allowed")

    # the Edit tab by keyboard, down to its Save button
    press_tab_until(page, lambda s: s["id"] == "tab-edit")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/edit$"))
    stops = tab_through(page)
    assert {"f-name", "f-channels", "f-config_toml", "save"} <= {s["id"] for s in stops}
    check_rings(stops)


def test_summary_cells_are_picked_by_keyboard(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Summed"), currency="EUR")
    day = datetime.now(UTC) - timedelta(days=1)
    publish_call(stack, card["id"], day, "1.5000")
    publish_call(stack, card["id"], day - timedelta(days=1), "2.2500")
    page = browser
    sign_in(page, stack)
    deadline = time.monotonic() + 30
    while True:  # the calls reach reporting by the stream: bounded wait
        page.goto(f"{stack.http}/console/customers/{card['id']}?period=daily")
        if page.locator("#summary td.cells-select").count() >= 2 * 11:
            break
        assert time.monotonic() < deadline, "the calls never reached the summary"
        time.sleep(0.3)
    stop = press_tab_until(page, lambda s: "cells-select" in s["cls"])
    assert stop["ring"], describe(stop)
    page.keyboard.press("Space")
    expect(page.locator("#cell-totals")).to_contain_text("1 cell:")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#cell-totals")).to_contain_text("2 cells: sum 2")  # two days' attempts
    assert page.locator("#summary td.cells-select[tabindex='0']").count() == 1  # one Tab stop per table
