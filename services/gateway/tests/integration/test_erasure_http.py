"""Erasure through the gateway (admin routes with a reason) and the console, with the real customer service."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for

pytestmark = pytest.mark.servers
ERASED = "[erased]"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(gateway: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway.settings
    customer = await start_customer(CustomerSettings(nats_url=settings.nats_url, database_url=settings.database_url))

    async def ready() -> bool:
        return (await gateway.client.get("/readyz")).status_code == 200

    await wait_for(ready, timeout=30, message="the customer service behind the gateway")
    yield gateway.client
    await customer.stop()


def hidden(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form, f"no form posts to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


async def card_with_contact(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    card = (await client.post("/v1/customers", json={"name": f"Erase {tag}", "paypal_email": f"p-{tag}@ex.com"})).json()
    contact = await client.post(f"/v1/customers/{card['id']}/contacts",
                                json={"name": "Gina", "email": f"gina-{tag}@ex.com", "auto_generate_password": False,
                                      "password": "a-Long-password-12"})
    assert contact.status_code == 201, contact.text
    return card, contact.json()


async def test_only_admins_erase_with_a_reason_and_only_what_is_gone(gateway: Any, client: httpx.AsyncClient) -> None:
    card, contact = await card_with_contact(client)
    path = f"/v1/customers/{card['id']}/contacts/{contact['id']}/erase"
    operator = gateway.as_token(await gateway.make_token("operator"))
    assert (await client.post(path, json={"reason": "asked"}, headers=operator)).status_code == 403
    assert (await client.post(path, json={})).status_code == 422
    live = await client.post(path, json={"reason": "asked"})
    assert live.status_code == 409 and live.json()["error"]["code"] == "conflict"
    assert (await client.delete(f"/v1/customers/{card['id']}/contacts/{contact['id']}")).status_code == 204
    done = await client.post(path, json={"reason": "asked"})
    assert done.status_code == 200 and contact["email"] not in done.text
    unknown = await client.post(f"/v1/customers/{card['id']}/contacts/{uuid.uuid4()}/erase", json={"reason": "x"})
    assert unknown.status_code == 404

    whole = f"/v1/customers/{card['id']}/erase"
    assert (await client.post(whole, json={"reason": "closed"})).status_code == 409
    assert (await client.delete(f"/v1/customers/{card['id']}")).status_code == 204
    erased = await client.post(whole, json={"reason": "closed"})
    assert erased.status_code == 200 and erased.json()["paypal_email"] == ERASED
    refused = await client.patch(f"/v1/customers/{card['id']}", json={"notes": "x"})
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "personal_data_erased"


async def test_the_console_removes_and_erases_a_contact(gateway: Any, client: httpx.AsyncClient) -> None:
    card, contact = await card_with_contact(client)
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as browser:
        login = await browser.get("/console/login")
        csrf = hidden(login.text, "/console/login")["csrf_token"]
        signed = await browser.post("/console/login", data={"token": gateway.admin_token, "csrf_token": csrf,
                                                            "next": "/console/"})
        assert signed.status_code == 303, signed.text
        action = f"/console/customers/{card['id']}/contacts/{contact['id']}/remove"
        page = await browser.get(action)
        assert page.status_code == 200 and 'name="erase"' in page.text
        form = hidden(page.text, action)
        no_reason = await browser.post(action, data={**form, "erase": "on"})
        assert no_reason.status_code == 422 and "reason" in no_reason.text
        done = await browser.post(action, data={**form, "erase": "on", "reason": "the person asked"})
        assert done.status_code == 303 and "contact-erased" in done.headers["location"]
    again = await client.post(f"/v1/customers/{card['id']}/contacts/{contact['id']}/erase", json={"reason": "x"})
    assert again.status_code == 409 and "erased already" in again.text
