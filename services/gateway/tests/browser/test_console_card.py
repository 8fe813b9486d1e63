"""The customer card: new customer, the Edit tab (TOML errors at the line, currency locked), roles."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .conftest import Stack, sign_in, unique


def test_new_customer_shows_the_apis_errors_beside_the_fields(browser: Any, stack: Stack) -> None:
    taken = stack.create_customer(name=unique("Taken"))
    page = browser
    sign_in(page, stack)
    page.click("#new-customer")
    page.fill("#f-name", taken["name"].upper())
    page.fill("#f-tax", "150")
    page.fill("#f-address\\.country", "XX")
    page.click("#save")
    expect(page.locator(".field-error[data-field=tax]")).to_contain_text("less than or equal to 100")
    expect(page.locator(".field-error[data-field='address.country']")).to_contain_text("ISO 3166")
    expect(page.locator("#f-tax")).to_have_value("150")  # the input is kept

    page.fill("#f-tax", "7.5")
    page.fill("#f-address\\.country", "gb")
    page.click("#save")
    expect(page.locator(".field-error[data-field=name]")).to_contain_text("another customer already has this name")

    name = unique("Fresh")
    page.fill("#f-name", name)
    page.fill("#f-currency", "EUR")
    page.click("#save")
    expect(page.locator("#created")).to_be_visible()
    expect(page.locator("#card-name")).to_have_text(name)
    with stack.api() as api:
        card = api.get("/v1/customers", params={"q": name.split()[1]}).json()["items"][0]
    assert (card["currency"], card["tax"], card["address"]["country"]) == ("EUR", "7.5", "GB")


def test_editing_a_card(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Editable"), currency="EUR", channels=5)
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/?q={card['name'].split()[1]}")
    page.click("a.card-link")
    page.click("#tab-edit")
    expect(page.locator("#f-currency")).to_be_disabled()
    expect(page.locator("#f-currency")).to_have_value("EUR")

    page.fill("#f-channels", "42")
    page.fill("#f-tags", "gold, uk")
    page.check("input[name='verification.email_required']")
    page.fill("#f-config_toml", "[routing]\nprefix = \"44\"\nmax = = 3\n")
    page.click("#save")
    error = page.locator(".field-error[data-field=config_toml]")
    expect(error).to_contain_text("line 3")
    expect(page.locator("#toml-bad-line")).to_have_text("max = = 3")
    expect(page.locator("#f-channels")).to_have_value("42")

    page.fill("#f-config_toml", "[routing]\nprefix = \"44\"\nmax = 3\n")
    page.fill("#f-reason", "upgrade to gold")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()
    with stack.api() as api:
        now = api.get(f"/v1/customers/{card['id']}").json()
        audit = api.get(f"/v1/customers/{card['id']}/audit").json()["items"][0]
    assert now["channels"] == 42 and now["tags"] == ["gold", "uk"]
    assert now["config"] == {"routing": {"prefix": "44", "max": 3}}
    assert now["verification"]["email_required"] is True
    assert now["currency"] == "EUR"
    assert audit["reason"] == "upgrade to gold" and audit["actor"]["name"] == "admin"

    # someone else changes the card while the form is open: 412, said plainly
    with stack.api() as api:
        assert api.patch(f"/v1/customers/{card['id']}", json={"cps": "9"}).status_code == 200
    page.fill("#f-channels", "43")
    page.click("#save")
    expect(page.locator(".form-errors")).to_contain_text("reload")
    with stack.api() as api:
        assert api.get(f"/v1/customers/{card['id']}").json()["channels"] == 42


def test_a_viewer_sees_no_edit_buttons_and_the_api_refuses_anyway(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Viewed"))
    page = browser
    sign_in(page, stack, stack.create_token("viewer"))
    expect(page.locator(".role")).to_have_text("viewer")
    expect(page.locator("#new-customer")).to_have_count(0)
    expect(page.locator("#bulk-edit")).to_have_count(0)
    expect(page.locator("#bulk-delete")).to_have_count(0)
    page.goto(f"{stack.http}/console/customers/{card['id']}/edit")
    expect(page.locator("#f-name")).to_be_disabled()
    expect(page.locator("#save")).to_have_count(0)
    expect(page.locator("#delete-customer")).to_have_count(0)

    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    reply = page.request.post(f"{stack.http}/console/customers/{card['id']}/edit",
                              form={"csrf_token": csrf, "name": "Hijacked", "version": "1"})
    assert reply.status == 403
    assert re.search(r"role (&#39;|')viewer(&#39;|') may not do this", reply.text())
    with stack.api() as api:
        assert api.get(f"/v1/customers/{card['id']}").json()["name"] == card["name"]


def test_status_change_and_dial_permission_on_the_main_tab(browser: Any, stack: Stack) -> None:
    card = stack.create_customer(name=unique("Dialer"), channels=4, debit_limit="100")
    page = browser
    sign_in(page, stack)
    page.goto(f"{stack.http}/console/customers/{card['id']}")
    page.click("#check-dial")
    expect(page.locator("#dial-answer")).to_have_text("Allowed")

    page.select_option("#f-status", "penalty")
    page.click("#change-status")  # penalty needs an end
    expect(page.locator("#status-form .form-errors, #status-form .field-error").first).to_be_visible()

    page.select_option("#f-status", "inactive")
    page.fill("#f-reason", "unpaid invoices")
    page.click("#change-status")
    expect(page.locator("#card-status")).to_have_text("inactive")
    page.click("#check-dial")
    expect(page.locator("#dial-answer")).to_contain_text("Not allowed: inactive")
