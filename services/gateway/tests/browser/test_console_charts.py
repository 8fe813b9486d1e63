"""The card summary's charts (points = seeded days, values = the table's) and the self-refreshing Live view."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from shared import bus

from .conftest import Stack, sign_in, unique


def publish(stack: Stack, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Messages on CALLS as the switch sends them (from a thread: Playwright holds this loop)."""

    async def send() -> None:
        nc = await bus.connect(stack.nats_url, "provisioner")
        js = nc.jetstream()
        for subject, body in messages:
            await js.publish(subject, json.dumps(body).encode())
        await nc.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result(timeout=30)


def record(customer_id: str, day: datetime, *, answered: bool, charge: str) -> tuple[str, dict[str, Any]]:
    """One call record at 09:00 UTC of a day: answered (120 billed seconds) or failed."""
    start = day.replace(hour=9, minute=0, second=0, microsecond=0).isoformat()
    return f"calls.cdr.{customer_id}", {
        "call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": start,
        "answered_at": start if answered else None, "ended_at": start, "duration_s": 100 if answered else 0,
        "billed_duration_s": 120 if answered else 0, "charge": charge, "cost": "0.1" if answered else "0",
        "disposition": "answered" if answered else "failed", "sip_code": 200 if answered else 503}


def wait_for_attempts(stack: Stack, customer_id: str, attempts: int) -> dict[str, Any]:
    """The daily summary once reporting has counted every record (bounded wait)."""
    with stack.api() as api:
        for _ in range(150):
            summary = api.get(f"/v1/customers/{customer_id}/summary", params={"period": "daily"}).json()
            if summary["totals"]["attempts"] == attempts:
                return dict(summary)
            threading.Event().wait(0.1)
    raise AssertionError(f"reporting never counted {attempts} attempts: {summary['totals']}")


def test_the_summary_chart_plots_the_seeded_days(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Charted"), currency="EUR")
    cid = card["id"]
    now = datetime.now(UTC)
    busy_day, quiet_day = now - timedelta(days=2), now - timedelta(days=5)
    calls = [record(cid, busy_day, answered=True, charge="0.5000") for _ in range(3)]
    calls += [record(cid, busy_day, answered=False, charge="0"), record(cid, quiet_day, answered=True, charge="0.25")]
    calls += [record(cid, quiet_day, answered=False, charge="0")]
    publish(stack, calls)
    summary = wait_for_attempts(stack, cid, 6)
    assert len(summary["rows"]) == 2

    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{cid}?period=daily")
    charts = page.locator("#summary-charts svg.chart")
    expect(charts).to_have_count(4)
    for series in ("attempts", "asr", "acd-s", "charge"):
        svg = page.locator(f"svg.chart[data-series={series}]")
        expect(svg.locator("circle.point")).to_have_count(2)  # one point per day with calls
        assert svg.get_attribute("data-points") == "2" and svg.get_attribute("data-buckets") == "31"
        assert svg.get_attribute("role") == "img" and svg.get_attribute("tabindex") == "0"
        assert svg.locator("title").first.text_content()
    busy = busy_day.date().isoformat()
    asr = page.locator(f"svg.chart[data-series=asr] circle.point[data-at='{busy}']")
    assert asr.get_attribute("data-value") == "75.00"
    assert asr.locator("title").text_content() == f"{busy} UTC: ASR 75.00 %"
    row = page.locator(f"#summary tbody tr[data-period-start='{busy}']")
    for col, series in (("asr", "asr"), ("attempts", "attempts"), ("acd_s", "acd-s"), ("charge", "charge")):
        plotted = page.locator(f"svg.chart[data-series={series}] circle.point[data-at='{busy}']")
        assert plotted.get_attribute("data-value") == row.locator(f"td[data-col={col}]").get_attribute("data-value")
    expect(row.locator("td[data-col=charge]")).to_have_text("€1.50")  # money in minor units, the symbol
    expect(row.locator("td[data-col=asr]")).to_have_text("75.00 %")
    charge = page.locator(f"svg.chart[data-series=charge] circle.point[data-at='{busy}']")
    assert charge.locator("title").text_content() == f"{busy} UTC: Charge (EUR) €1.50"
    assert "whole range €1.75" in (page.locator("#chart-charge-desc").text_content() or "")

    # a chosen range: only the busy day, so one point per chart; the CSV export follows the range
    page.fill("#f-from", busy)
    page.fill("#f-to", busy)
    page.click("#summary-show")
    expect(page.locator("svg.chart[data-series=asr] circle.point")).to_have_count(1)
    assert page.locator("#chart-asr").get_attribute("data-buckets") == "1"
    expect(page.locator("#summary tfoot th[data-col=attempts]")).to_have_text("4")
    assert f"from={busy}" in (page.locator("#summary-csv").get_attribute("href") or "")
    page.fill("#f-to", quiet_day.date().isoformat())  # before `from`: the API's refusal, said
    page.click("#summary-show")
    expect(page.locator("#summary-panel .warning")).to_contain_text("Summaries are not available")
    page.goto(f"{stack.http}/console/customers/{cid}?period=daily")

    # keyboard: the charts are reachable with Tab and say what they are
    page.locator("#summary-csv").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('svg.chart')"):
            break
    assert page.evaluate("document.activeElement.id") == "chart-attempts"  # the first chart, after the CSV link

    # a phone's width: the charts stack in one column inside the screen
    page.set_viewport_size({"width": 390, "height": 844})
    boxes = [charts.nth(i).bounding_box() for i in range(4)]
    assert all(b and b["x"] >= 0 and b["x"] + b["width"] <= 390 for b in boxes), boxes
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"] < boxes[3]["y"]  # type: ignore[index]
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_live_view_refreshes_by_itself_without_taking_focus(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Live"), currency="USD", channels=10)
    cid = card["id"]
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{cid}?period=live")
    expect(page.locator("#live-channels")).to_have_text("0")
    expect(page.locator("#live-auto")).to_be_checked()
    expect(page.locator("#live-auto-label")).to_be_visible()
    page.evaluate("window.sameDocument = true")
    page.locator("#f-cli").fill("+1415")  # the operator is typing elsewhere on the page
    refreshed: list[str] = []
    page.on("request", lambda r: refreshed.append(r.url) if r.url.endswith(f"/customers/{cid}/live") else None)

    now = datetime.now(UTC).isoformat()
    publish(stack, [(f"calls.started.{cid}", {"call_id": uuid.uuid4().hex, "customer_id": cid, "started_at": now})])
    expect(page.locator("#live-channels")).to_have_text("1", timeout=30_000)  # no reload, no click
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator("#card-channels")).to_have_text("1 / 10")  # the header follows
    expect(page.locator("#live-state")).to_contain_text("Updated")
    assert page.evaluate("document.activeElement.id") == "f-cli"  # focus and the typed text stay
    page.keyboard.type("5550123")
    expect(page.locator("#f-cli")).to_have_value("+14155550123")
    assert refreshed

    # hidden tab: no refresh
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    expect(page.locator("#live-state")).to_have_text("Paused while the tab is hidden")
    page.evaluate("""() => {
        delete document.visibilityState;
        document.dispatchEvent(new Event('visibilitychange'));
    }""")

    # the operator stops it: the state says so and it stays stopped after a reload
    page.locator("#live-auto").uncheck()
    expect(page.locator("#live-state")).to_have_text("Stopped")
    page.reload()
    expect(page.locator("#live-auto")).not_to_be_checked()
    expect(page.locator("#live-state")).to_have_text("Stopped")
    page.locator("#live-auto").check()
    expect(page.locator("#live-state")).to_have_text("Refreshing again")


def test_picked_summary_cells_copy_with_and_without_headers(browser: Any, browser_context: Any,
                                                             stack: Stack) -> None:
    """The seed's Summary: select cells of several columns and rows, then Copy / Copy with Headers."""
    card = stack.create_customer(name=unique("Copied"), currency="EUR")
    cid = card["id"]
    now = datetime.now(UTC)
    first, second = now - timedelta(days=3), now - timedelta(days=1)
    calls = [record(cid, first, answered=True, charge="1.5000"), record(cid, first, answered=False, charge="0")]
    calls += [record(cid, second, answered=True, charge="0.2500")]
    publish(stack, calls)
    wait_for_attempts(stack, cid, 3)
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.http)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{cid}?period=daily")
    page.click("button.copy-cells[data-headers='0']")
    expect(page.locator("#copy-status")).to_contain_text("Nothing picked")
    rows = page.locator("#summary tbody tr")
    expect(rows).to_have_count(2)
    for i in (0, 1):  # attempts and charge of both days; ASR of the first only
        rows.nth(i).locator("td[data-col=attempts]").click()
        rows.nth(i).locator("td[data-col=charge]").click()
    rows.nth(0).locator("td[data-col=asr]").click()
    page.click("button.copy-cells[data-headers='0']")
    expect(page.locator("#copy-status")).to_contain_text("5 cells copied")
    assert page.evaluate("navigator.clipboard.readText()") == "2\t50.00 %\t€1.50\n1\t\t€0.25"
    page.click("button.copy-cells[data-headers='1']")
    expect(page.locator("#copy-status")).to_contain_text("copied with headers")
    assert page.evaluate("navigator.clipboard.readText()") == (
        "Attempts\tASR\tCharge\n2\t50.00 %\t€1.50\n1\t\t€0.25")
