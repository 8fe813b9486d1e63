"""The console's small lies (issue 17): the country field, the URL after saving, the audit view."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from devtools.testing.waiting import wait_for

pytestmark = pytest.mark.servers
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


def hidden(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form, f"no form posts to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


@pytest_asyncio.fixture(loop_scope="session")
async def console(gateway: Any, real_services: None) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in operator's browser (cookies kept, redirects followed like htmx's XHR)."""
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test",
                                 follow_redirects=True) as client:
        page = await client.get("/console/login")
        csrf = hidden(page.text, "/console/login")["csrf_token"]
        token = await gateway.make_token("operator")
        reply = await client.post("/console/login", data={"token": token, "csrf_token": csrf, "next": "/console/"})
        assert reply.status_code == 200, reply.text[:300]
        yield client


async def new_customer_form(console: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await console.get("/console/customers/new")
    form = hidden(page.text, "/console/customers/new")
    return await console.post("/console/customers/new", headers=BOOSTED,
                              data={**form, "currency": "EUR", "status": "active", "debit_limit": "0",
                                    "minimum_payment": "0", "tax": "0", "channels": "10", "cps": "1", **fields})


async def test_a_country_name_is_its_code_and_a_wrong_one_is_refused(console: httpx.AsyncClient,
                                                                    gateway: Any) -> None:
    page = await console.get("/console/customers/new")
    assert 'maxlength="2"' not in page.text  # "Germany" is never cut to GE (Georgia)
    name = f"Country {uuid.uuid4().hex[:8]}"
    reply = await new_customer_form(console, name=name, **{"address.country": "Germany"})
    assert reply.status_code == 200, re.findall(r"field-error[^<]*|form-errors.{0,400}", reply.text, re.S)
    card = (await gateway.client.get("/v1/customers", params={"q": name})).json()["items"][0]
    assert card["address"]["country"] == "DE"
    reply = await new_customer_form(console, name=f"Nowhere {uuid.uuid4().hex[:8]}",
                                    **{"address.country": "Gemany"})
    assert reply.status_code == 422
    assert re.search(r'data-field="address\.country"[^>]*>[^<]*ISO 3166', reply.text), reply.text[-3000:]


async def test_after_saving_the_address_bar_shows_the_saved_card(console: httpx.AsyncClient) -> None:
    reply = await new_customer_form(console, name=f"Pushed {uuid.uuid4().hex[:8]}")
    assert reply.status_code == 200
    pushed = reply.headers["HX-Push-Url"]
    assert re.fullmatch(r"/console/customers/[0-9a-f-]{36}\?created=1", pushed), pushed
    # the contact form (and every other) lands the same way: its 303 leads to a boosted GET of the card
    customer = pushed.split("/")[3].split("?")[0]
    card = await console.get(f"/console/customers/{customer}", params={"notice": "contact"}, headers=BOOSTED)
    assert card.headers["HX-Push-Url"] == f"/console/customers/{customer}?notice=contact"
    plain = await console.get(f"/console/customers/{customer}")
    assert "HX-Push-Url" not in plain.headers  # a page loaded without htmx is left alone


async def test_the_audit_view_marks_only_what_changed(console: httpx.AsyncClient, gateway: Any) -> None:
    address = {"line1": "1 Road", "line2": "Floor 2", "city": "Leeds", "region": "Yorks",
               "postcode": "LS1", "country": "GB"}
    created = await gateway.client.post("/v1/customers", json={
        "name": f"Audit {uuid.uuid4().hex[:8]}", "currency": "EUR", "address": address})
    card = created.json()
    changed = await gateway.client.patch(f"/v1/customers/{card['id']}",
                                         json={"address": {**address, "city": "York"}})
    assert changed.status_code == 200, changed.text
    assert (await gateway.client.post(f"/v1/customers/{card['id']}/status",
                                      json={"status": "inactive"})).status_code == 200

    async def logged() -> httpx.Response | None:
        page = await console.get(f"/console/customers/{card['id']}/audit")
        return page if page.text.count('class="audit-entry"') >= 3 else None

    page = await wait_for(logged, timeout=20, message="three audit entries")
    update = re.search(r'data-type="CustomerUpdated".*?</li>', page.text, re.S)
    assert update
    assert re.findall(r'<tr class="changed" data-field="([^"]+)"', update.group(0)) == ["address.city"]
    status = re.search(r'data-type="CustomerStatusChanged".*?</li>', page.text, re.S)
    assert status
    assert "until" not in re.findall(r'<tr class="changed" data-field="([^"]+)"', status.group(0))
    assert "(customer status changed, v" in status.group(0)
    # the type filter takes human names
    filtered = await console.get(f"/console/customers/{card['id']}/audit", params={"type": "status changed"})
    assert filtered.text.count('class="audit-entry"') == 1 and 'data-type="CustomerStatusChanged"' in filtered.text
    refused = await console.get(f"/console/customers/{card['id']}/audit", params={"type": "renamed"})
    assert refused.status_code == 422 and "no event type &#39;renamed&#39;" in refused.text
