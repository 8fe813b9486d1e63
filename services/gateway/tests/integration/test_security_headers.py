"""Security headers on every answer, HSTS over TLS only, /docs without third-party scripts (issue 14)."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.servers


def assert_hardened(reply: httpx.Response) -> None:
    csp = reply.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp
    assert "unsafe-eval" not in csp
    assert reply.headers.get("x-content-type-options") == "nosniff"
    assert reply.headers.get("x-frame-options") == "DENY"
    assert reply.headers.get("referrer-policy") == "no-referrer"


async def test_pages_api_answers_and_errors_carry_the_headers(gateway) -> None:
    for path in ("/console/login", "/portal/login", "/v1/customers", "/nope", "/openapi.json"):
        reply = await gateway.client.get(path)
        assert_hardened(reply)
        assert "script-src 'self'" in reply.headers["content-security-policy"]
        assert "strict-transport-security" not in reply.headers  # plain http: no HSTS
    too_big = await gateway.client.post("/v1/customers", content=b"x" * (gateway.settings.max_body_bytes + 1))
    assert too_big.status_code == 413
    assert_hardened(too_big)


async def test_hsts_only_over_tls(gateway) -> None:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as tls:
        reply = await tls.get("/console/login")
    assert reply.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_docs_load_only_the_gateways_own_scripts(gateway) -> None:
    page = await gateway.client.get("/docs")
    assert page.status_code == 200
    assert_hardened(page)
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") or s.startswith("data:") for s in sources), sources
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for source in sources:
        if source.startswith("/"):
            assert (await gateway.client.get(source)).status_code == 200, source
