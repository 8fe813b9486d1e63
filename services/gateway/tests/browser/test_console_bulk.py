"""Bulk edit, bulk delete and bulk upload from the board; number blocks on the card."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique


def test_bulk_edit_of_the_ticked_customers(browser: Any, stack: Stack) -> None:
    tag = f"b{uuid.uuid4().hex[:8]}"
    first = stack.create_customer(name=unique("Bulk A"), tags=[tag, "old"], channels=1)
    second = stack.create_customer(name=unique("Bulk B"), tags=[tag, "old"], channels=2)
    untouched = stack.create_customer(name=unique("Bulk C"), tags=[tag, "old"], channels=3)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    for card in (first, second):
        page.locator(f"tr[data-id='{card['id']}'] .row-tick").check()
    page.click("#bulk-edit")
    expect(page.locator("#selection-summary")).to_contain_text("2 ticked customers")

    page.fill("#f-channels", "-5")
    page.click("#apply-bulk-edit")
    expect(page.locator(".field-error[data-field=channels]")).to_be_visible()

    page.fill("#f-channels", "77")
    page.fill("#f-add_tags", "gold")
    page.fill("#f-remove_tags", "old")
    page.select_option("#f-portal_access", "no")
    page.fill("#f-reason", "contract renewal")
    page.click("#apply-bulk-edit")
    expect(page.locator("#bulk-succeeded")).to_have_text("2")
    expect(page.locator("#bulk-failed")).to_have_text("0")

    with stack.api() as api:
        cards = {c["id"]: c for c in api.get("/v1/customers", params={"tag": tag}).json()["items"]}
    for card in (first, second):
        now = cards[card["id"]]
        assert now["channels"] == 77 and now["portal_access"] is False
        assert sorted(now["tags"]) == sorted([tag, "gold"])
    assert cards[untouched["id"]]["channels"] == 3 and "old" in cards[untouched["id"]]["tags"]


def test_bulk_delete_asks_first(browser: Any, stack: Stack) -> None:
    tag = f"d{uuid.uuid4().hex[:8]}"
    doomed = [stack.create_customer(name=unique("Doomed"), tags=[tag]) for _ in range(2)]
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?tag={tag}")
    page.check("#all-matching")
    page.click("#bulk-delete")
    expect(page.locator("h1")).to_contain_text("Delete 2 customers?")
    for card in doomed:
        expect(page.locator("#delete-list")).to_contain_text(card["name"])
    with stack.api() as api:  # nothing yet
        assert api.get("/v1/customers", params={"tag": tag}).json()["total"] == 2
    page.click("#confirm-delete")
    expect(page.locator("#bulk-succeeded")).to_have_text("2")
    with stack.api() as api:
        assert api.get("/v1/customers", params={"tag": tag}).json()["total"] == 0


def test_bulk_upload_lists_each_rows_result(browser: Any, stack: Stack, tmp_path: Path) -> None:
    tag = f"u{uuid.uuid4().hex[:8]}"
    good = [unique("Uploaded"), unique("Uploaded")]
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "name,currency,tags,address.country,channels\n"
        f"{good[0]},EUR,{tag},GB,10\n"
        f"{unique('Broken')},ZZZ,{tag},GB,10\n"
        f"{good[1]},USD,{tag},US,20\n"
    )
    page = browser
    sign_in(page, stack)
    page.click("text=Bulk upload")
    page.set_input_files("#f-file", str(csv_file))
    page.click("#upload")  # all or nothing: the bad row stops everything
    expect(page.locator("#upload-created")).to_have_text("0")
    expect(page.locator("#upload-rows tr[data-row='2']")).to_contain_text("currency")
    with stack.api() as api:
        assert api.get("/v1/customers", params={"tag": tag}).json()["total"] == 0

    page.set_input_files("#f-file", str(csv_file))
    page.select_option("#f-mode", "best_effort")
    page.click("#upload")
    expect(page.locator("#upload-created")).to_have_text("2")
    expect(page.locator("#upload-failed")).to_have_text("1")
    expect(page.locator("#upload-rows tr[data-row='1'] a")).to_have_text("created")
    expect(page.locator("#upload-rows tr[data-row='2']")).to_contain_text("ISO 4217")
    with stack.api() as api:
        names = {c["name"] for c in api.get("/v1/customers", params={"tag": tag}).json()["items"]}
    assert names == set(good)


def test_number_range_setting_and_blocks_on_the_card(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Numbered"))
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/settings")
    page.fill("#f-start", "100000")
    page.fill("#f-block_size", "1000")
    page.click("#save-range")
    expect(page.locator("#notice")).to_have_text("Number range saved.")

    page.goto(f"{stack.http}/console/customers/{card['id']}")
    page.click("#assign-block")
    expect(page.locator("#notice")).to_have_text("Number blocks changed.")
    expect(page.locator("#number-blocks li")).to_have_count(1)
    page.locator("#number-blocks button", has_text="Release").click()
    expect(page.locator("#number-blocks li")).to_have_count(0)
