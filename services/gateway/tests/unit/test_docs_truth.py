"""docs/http-api.md says what the gateway does: its role table and /healthz's answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from gateway.auth.role_table import BEGIN, END, table
from gateway.bootstrap import create_app
from gateway.settings import GatewaySettings

HTTP_API = Path(__file__).parents[4] / "docs" / "http-api.md"


def test_the_role_table_is_the_routes_own() -> None:
    """Every route with the roles its checks allow (else: `python -m gateway.auth.role_table`)."""
    text = HTTP_API.read_text()
    documented = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    generated = table(create_app(GatewaySettings()))
    assert documented == generated
    for area in ("/v1/messages", "/v1/customers/{customer_id}/summary", "/v1/customers/{customer_id}/contacts",
                 "/v1/customers/{customer_id}/payments", "/v1/alerts", "/v1/invoices"):
        assert f" {area}`" in generated, area


async def test_healthz_answers_what_the_docs_say() -> None:
    row = re.search(r"\| `GET /healthz` \| 200 `([^`]+)`", HTTP_API.read_text())
    assert row
    transport = httpx.ASGITransport(app=create_app(GatewaySettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        reply = await client.get("/healthz")
    assert reply.status_code == 200 and reply.json() == json.loads(row.group(1))
