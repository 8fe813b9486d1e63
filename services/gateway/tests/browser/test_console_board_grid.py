"""The board's header counts per status, row groups with counts and sums, and copying cells as TSV."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in


def seed(stack: Stack) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """Four customers under a fresh tag, across currencies, statuses and a second tag."""
    tag, extra = f"g{uuid.uuid4().hex[:8]}", f"h{uuid.uuid4().hex[:8]}"
    word = uuid.uuid4().hex[:6]
    made = {
        "a": stack.create_customer(name=f'Grid A "Q" {word}', currency="EUR", debit_limit="100.50",
                                   minimum_payment="10", channels=10, cps=5, tags=[tag, extra],
                                   address={"country": "GB"}),
        "b": stack.create_customer(name=f"Grid B {word}", currency="EUR", debit_limit="0.25", channels=5,
                                   cps=1, tags=[tag], address={"country": "DE"}, status="inactive"),
        "c": stack.create_customer(name=f"Grid C {word}", currency="USD", debit_limit="20", channels=3,
                                   cps=2, tags=[tag, extra], address={"country": "US"}),
        "d": stack.create_customer(name=f"Grid D {word}", currency="JPY", debit_limit="1500", channels=1,
                                   cps=1, tags=[tag], address={"country": "JP"}, status="pending_approval"),
    }
    return tag, extra, made


def group_row(page: Any, key: str) -> Any:
    return page.locator(f"#board tr.group-row[data-group='{key}']")


def test_header_counts_customers_per_status_for_the_filter(browser: Any, stack: Stack) -> None:
    tag, _, _ = seed(stack)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    counts = page.locator("#status-counts")
    for status, n in (("active", 2), ("inactive", 1), ("pending_approval", 1), ("penalty", 0)):
        expect(counts.locator(f"a[data-status={status}] .n")).to_have_text(str(n))
    # the counts are the filter's without its status part: a status link keeps them and filters
    counts.locator("a[data-status=active]").click()
    expect(page.locator("#board-total")).to_have_text("2")
    expect(counts.locator("a[data-status=inactive] .n")).to_have_text("1")
    expect(counts.locator("a[data-status=active]")).to_have_class("status status-active on")
    with stack.api() as api:  # the same figures as the API's own board
        for status in ("active", "inactive"):
            assert api.get("/v1/customers", params={"tag": tag, "status": status}).json()["total"] == \
                int(counts.locator(f"a[data-status={status}] .n").inner_text())


def test_grouped_by_currency_with_counts_and_sums_per_currency(browser: Any, stack: Stack) -> None:
    tag, _, made = seed(stack)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    page.select_option("#f-group", "currency")
    page.click("#apply-filters")
    expect(page.locator("#board tr.group-row")).to_have_count(3)
    assert page.locator("#board tr.group-row").evaluate_all("rs => rs.map(r => r.dataset.group)") == \
        ["EUR", "JPY", "USD"]
    eur = group_row(page, "EUR")
    expect(eur.locator(".g-count")).to_have_text("2 customers")
    expect(eur.locator(".g-sum[data-col=channels]")).to_have_text("channels 15")
    expect(eur.locator(".g-sum[data-col=cps]")).to_have_text("CPS 6")
    expect(eur.locator(".g-money[data-col=debit_limit]")).to_have_text("debit limit €100.75")
    expect(eur.locator(".g-money[data-col=minimum_payment]")).to_have_text("min. payment €10.00")
    expect(group_row(page, "JPY").locator(".g-money[data-col=debit_limit]")).to_have_text("debit limit ¥1,500")
    expect(group_row(page, "USD").locator(".g-count")).to_have_text("1 customer")
    # the rows follow their group's heading; money cells in the currency's minor units
    rows = page.locator("#board tbody tr").evaluate_all(
        "rs => rs.map(r => r.classList.contains('group-row') ? 'G:' + r.dataset.group : r.dataset.id)")
    assert rows == ["G:EUR", made["a"]["id"], made["b"]["id"], "G:JPY", made["d"]["id"],
                    "G:USD", made["c"]["id"]]
    expect(page.locator(f"tr[data-id='{made['d']['id']}'] td[data-col=debit_limit]")).to_have_text("¥1,500")
    expect(page.locator("#group-note")).to_contain_text("all 4 customers matching the filter")


def test_grouped_by_tag_lists_a_customer_under_each_tag_and_pages_back_and_forth(
    browser: Any, stack: Stack
) -> None:
    tag, extra, made = seed(stack)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}&group=tag&limit=4")
    # 4 customers under `tag`, 2 of them also under `extra`: 6 rows; the tag group spans pages
    expect(page.locator("#page-range")).to_have_text("1\u20134 of 6 rows")
    big = group_row(page, tag)
    expect(big.locator(".g-count")).to_have_text("4 customers")
    expect(big.locator(".g-money[data-col=debit_limit]")).to_have_text("debit limit €100.75, ¥1,500, $20.00")
    page.click("#next-page")
    expect(page.locator("#page-range")).to_have_text("5\u20136 of 6 rows")
    expect(page.locator("#board tr.group-row")).to_have_count(1)
    small = group_row(page, extra)
    expect(small.locator(".g-count")).to_have_text("2 customers")
    expect(small.locator(".g-sum[data-col=channels]")).to_have_text("channels 13")
    ids = page.locator("#board tbody tr.data-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == [made["a"]["id"], made["c"]["id"]]
    expect(page.locator("#next-page")).to_have_count(0)
    page.click("#previous-page")
    expect(page.locator("#page-range")).to_have_text("1\u20134 of 6 rows")
    expect(page.locator("#previous-page")).to_have_count(0)
    # a page that starts inside a group repeats its heading
    page.goto(f"{stack.http}/console/?tag={tag}&group=tag&limit=3&at=3")
    expect(group_row(page, tag).locator(".g-label")).to_contain_text("(continued)")
    expect(group_row(page, tag).locator(".g-count")).to_have_text("4 customers")


def clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_copy_cells_and_ticked_rows_as_tsv_with_and_without_headers(
    browser: Any, browser_context: Any, stack: Stack
) -> None:
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.http)
    tag, _, made = seed(stack)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}&sort=name")
    row = {k: page.locator(f"tr[data-id='{made[k]['id']}']") for k in made}

    # click, Shift+click: a block of 2 rows x 3 columns
    row["a"].locator("td[data-col=status]").click()
    row["b"].locator("td[data-col=country]").click(modifiers=["Shift"])
    expect(page.locator("#board td[aria-selected=true]")).to_have_count(6)
    page.click("#copy-cells")
    expect(page.locator("#grid-status")).to_have_text("Copied 2 rows \u00d7 3 columns.")
    assert clipboard(page) == "active\tEUR\tGB\ninactive\tEUR\tDE"
    page.click("#copy-with-headers")
    expect(page.locator("#grid-status")).to_have_text("Copied 2 rows \u00d7 3 columns with headers.")
    assert clipboard(page) == "Status\tCurrency\tCountry\nactive\tEUR\tGB\ninactive\tEUR\tDE"

    # Ctrl+click adds a cell elsewhere; the gaps of the block stay empty; a quote is quoted
    row["a"].locator("td[data-col=name]").click(position={"x": 2, "y": 2})
    row["c"].locator("td[data-col=channels]").click(modifiers=["Control"])
    page.click("#copy-cells")
    name = made["a"]["name"].replace('"', '""')
    assert clipboard(page) == f'"{name}"\t\n\t3'

    # the keyboard: arrows, Shift+arrows, Ctrl+C and Ctrl+Shift+C
    row["c"].locator("td[data-col=currency]").click()
    page.keyboard.press("ArrowUp")
    expect(row["b"].locator("td[data-col=currency]")).to_be_focused()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Control+c")
    expect(page.locator("#grid-status")).to_have_text("Copied 2 rows \u00d7 2 columns.")
    assert clipboard(page) == "EUR\tDE\nUSD\tUS"
    page.keyboard.press("Control+Shift+C")
    assert clipboard(page) == "Currency\tCountry\nEUR\tDE\nUSD\tUS"
    page.keyboard.press("Control+a")
    expect(page.locator("#board td[aria-selected=true]")).to_have_count(4 * 9)  # 9 columns shown

    # nothing selected: the ticked rows, every visible column
    page.keyboard.press("Escape")
    expect(page.locator("#board td[aria-selected=true]")).to_have_count(0)
    row["d"].locator(".row-tick").check()
    page.click("#copy-with-headers")
    lines = clipboard(page).split("\n")
    assert lines[0] == "Name\tStatus\tCurrency\tCountry\tChannels\tCPS\tDebit limit\tTags\tCreated"
    cells = lines[1].split("\t")
    assert cells[:7] == [made["d"]["name"], "pending approval", "JPY", "JP", "1", "1", "¥1,500"]
    assert cells[8].endswith(" UTC") and len(lines) == 2


def test_the_grid_tools_fit_a_phone(browser: Any, stack: Stack) -> None:
    tag, _, _ = seed(stack)
    page = browser
    sign_in(page, stack)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(f"{stack.http}/console/?tag={tag}&group=status")
        for selector in ("#copy-cells", "#copy-with-headers", "#status-counts", "#f-group"):
            expect(page.locator(selector)).to_be_visible()
        # the table scrolls inside its frame; the page itself does not scroll sideways
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 392 && !e.closest('.table-wrap'))
            .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert page.evaluate("document.documentElement.scrollWidth") <= 392, wide
        expect(page.locator("#board")).to_have_attribute("role", "grid")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
