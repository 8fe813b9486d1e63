"""Sign-in and the board: filters, search, sort, paging, columns, tick boxes, export."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique


def test_sign_in_keeps_the_token_in_a_secure_http_only_cookie_and_sign_out_ends_it(
    browser: Any, stack: Stack
) -> None:
    page = browser
    page.goto(f"{stack.http}/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.fill("#f-token", "pb_not_a_token")
    page.click("button[type=submit]")
    expect(page.locator(".field-error[data-field=token]")).to_contain_text("unknown or revoked")

    sign_in(page, stack)
    expect(page.locator("h1")).to_contain_text("Customers")
    cookie = next(c for c in page.context.cookies() if c["name"] == "pb_console")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert stack.token not in cookie["value"]  # sealed, not the token itself
    assert page.evaluate("document.cookie") == ""  # scripts see no cookie at all

    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto(f"{stack.http}/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_a_form_post_without_the_sessions_csrf_token_is_refused(browser: Any, stack: Stack) -> None:
    page = browser
    sign_in(page, stack)
    reply = page.request.post(f"{stack.http}/console/customers/new", form={"name": "CSRF victim"})
    assert reply.status == 403
    assert "CSRF" in reply.text()
    with stack.api() as api:
        assert api.get("/v1/customers", params={"q": "CSRF victim"}).json()["total"] == 0


def test_board_filters_search_sort_and_paging(browser: Any, stack: Stack) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    made = {
        "gold-gb": stack.create_customer(name=unique("Alpha"), currency="GBP", tags=[tag, "gold"],
                                         address={"country": "GB"}, channels=10),
        "gold-us": stack.create_customer(name=unique("Bravo"), currency="USD", tags=[tag, "gold"],
                                         address={"country": "US"}, channels=30),
        "silver": stack.create_customer(name=unique("Charlie"), currency="USD", tags=[tag],
                                        address={"country": "US"}, channels=20, status="inactive"),
        "other": stack.create_customer(name=unique("Delta"), currency="USD", address={"country": "US"}),
    }
    page = browser
    sign_in(page, stack)

    page.fill("#f-tag", tag)
    page.click("#apply-filters")
    expect(page.locator("#board-total")).to_have_text("3")
    names = page.locator("#board tbody a.card-link")
    expect(names).to_have_count(3)

    page.check("input[name=status][value=inactive]")
    page.click("#apply-filters")
    expect(page.locator("#board-total")).to_have_text("1")
    expect(names).to_have_text([made["silver"]["name"]])
    page.uncheck("input[name=status][value=inactive]")

    page.fill("#f-currency", "usd")
    page.fill("#f-country", "US")
    page.click("#apply-filters")
    expect(page.locator("#board-total")).to_have_text("2")

    page.fill("#f-currency", "")
    page.fill("#f-country", "")
    page.fill("#f-q", made["gold-gb"]["name"].split()[1])  # search by the unique word
    page.click("#apply-filters")
    expect(names).to_have_text([made["gold-gb"]["name"]])

    # a bad filter value: the API's error beside the field, not a crash
    page.fill("#f-q", "")
    page.fill("#f-currency", "XX")
    page.click("#apply-filters")
    expect(page.locator(".field-error[data-field=currency]")).to_contain_text("ISO 4217")
    page.fill("#f-currency", "")

    # sort by channels, descending on the second click
    page.fill("#f-tag", tag)
    page.click("#apply-filters")
    expect(page.locator(".field-error[data-field=currency]")).to_have_count(0)  # the new page is in
    page.click("#board thead a[data-sort=channels]")
    expect(names).to_have_text([made[k]["name"] for k in ("gold-gb", "silver", "gold-us")])
    page.click("#board thead a[data-sort=channels]")
    expect(names).to_have_text([made[k]["name"] for k in ("gold-us", "silver", "gold-gb")])

    # paging: two per page
    page.goto(f"{stack.http}/console/?tag={tag}&sort=-channels&limit=2")
    expect(names).to_have_count(2)
    expect(page.locator("#page-range")).to_have_text("1\u20132 of 3")
    page.click("#next-page")
    expect(names).to_have_count(1)
    expect(page.locator("#page-range")).to_have_text("3\u20133 of 3")
    expect(names).to_have_text([made["gold-gb"]["name"]])
    expect(page.locator("#next-page")).to_have_count(0)
    page.click("#previous-page")
    expect(page.locator("#page-range")).to_have_text("1\u20132 of 3")
    expect(page.locator("#previous-page")).to_have_count(0)
    page.click("#next-page")
    page.click("#first-page")
    expect(names).to_have_count(2)


def test_columns_chooser_is_remembered_and_select_all_ticks_the_page(browser: Any, stack: Stack) -> None:
    tag = f"c{uuid.uuid4().hex[:8]}"
    for i in range(3):
        stack.create_customer(name=unique(f"Col{i}"), tags=[tag])
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    header = page.locator("#board thead th[data-col=currency]")
    expect(header).to_be_visible()

    page.click("#columns-chooser summary")
    page.uncheck(".col-toggle[data-col=currency]")
    page.check(".col-toggle[data-col=tax]")
    page.click(".col-up[data-col=status]")  # status before name
    expect(header).to_be_hidden()

    page.reload()
    expect(page.locator("#board thead th[data-col=currency]")).to_be_hidden()
    expect(page.locator("#board thead th[data-col=tax]")).to_be_visible()
    first_cols = page.locator("#board thead th[data-col]").evaluate_all("els => els.map(e => e.dataset.col)")
    assert first_cols[:2] == ["status", "name"]
    row_cols = page.locator("#board tbody tr").first.locator("td[data-col]").evaluate_all(
        "els => els.map(e => e.dataset.col)")
    assert row_cols[:2] == ["status", "name"]  # cells follow their headers

    page.check("#select-all")
    expect(page.locator(".row-tick:checked")).to_have_count(3)
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.locator(".row-tick").first.uncheck()
    assert page.locator("#select-all").evaluate("e => e.indeterminate")
    expect(page.locator("#selected-count")).to_have_text("2 selected")


def test_csv_export_of_the_filter_and_of_the_ticked_rows(browser: Any, stack: Stack) -> None:
    tag = f"x{uuid.uuid4().hex[:8]}"
    first = stack.create_customer(name=unique("Export A"), tags=[tag])
    stack.create_customer(name=unique("Export B"), tags=[tag])
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    with page.expect_download() as download:
        page.click("#export-all")
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.startswith("id,name,")
    assert len(text.strip().splitlines()) == 3

    page.locator(f"tr[data-id='{first['id']}'] .row-tick").check()
    with page.expect_download() as download:
        page.click("#export-selected")
    lines = open(download.value.path(), encoding="utf-8").read().strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(first["id"])
