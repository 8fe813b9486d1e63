"""PostgreSQL or NATS down: every `/v1` call answers 503 `unavailable` with Retry-After, never 500."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for

from .processes import Servers, ServiceProcess, running_service, service_env

pytestmark = [pytest.mark.servers, pytest.mark.faults]

TOKEN = "pb_outage_" + secrets.token_urlsafe(32)
CALLS = [  # (method, path, body): reads and writes of every service behind the gateway
    ("GET", "/v1/customers", None),
    ("POST", "/v1/customers", {"name": "Outage Ltd"}),
    ("GET", "/v1/tokens", None),
    ("GET", "/v1/settings/email", None),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/reporting/lag", None),
]


@pytest.fixture
def gateway(servers: Servers, embedded_tmp_path: Path) -> Iterator[ServiceProcess]:
    """The gateway with the customer, notifier and reporting services behind it."""
    env = service_env(servers, PATCHBAY_ADMIN_TOKEN=TOKEN, PATCHBAY_HTTP_PORT=str(free_port()),
                      PATCHBAY_TOKEN_CACHE_TTL_S="0.1", PATCHBAY_DATA_DIR=str(embedded_tmp_path / "data"))
    with ExitStack() as stack:
        for name in ("customer", "notifier", "reporting"):
            stack.enter_context(running_service(name, env, embedded_tmp_path / f"{name}.log"))
        yield stack.enter_context(running_service("gateway", env, embedded_tmp_path / "gateway.log"))


async def _answers(http: httpx.AsyncClient, token: str) -> list[tuple[str, int, dict[str, str], str]]:
    found = []
    for method, path, body in CALLS:
        reply = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        code = reply.json().get("error", {}).get("code", "") if reply.status_code >= 400 else ""
        found.append((f"{method} {path}", reply.status_code, dict(reply.headers), code))
    return found


def _all_unavailable(answers: list[tuple[str, int, dict[str, str], str]]) -> None:
    for call, status, headers, code in answers:
        assert status == 503 and code == "unavailable", f"{call}: {status} {code}"
        assert headers.get("retry-after", "").isdigit(), f"{call}: no Retry-After"


async def test_every_call_is_503_while_postgres_or_nats_is_down(servers: Servers, gateway: ServiceProcess) -> None:
    base = f"http://127.0.0.1:{gateway.env['PATCHBAY_HTTP_PORT']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        created = await http.post("/v1/tokens", json={"name": "outage", "role": "admin"},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert created.status_code == 201, created.text
        api_token = created.json()["token"]
        assert (await http.get("/v1/customers", headers={"Authorization": f"Bearer {api_token}"})).status_code == 200

        await asyncio.to_thread(servers.postgres.stop)
        try:
            await asyncio.sleep(0.3)  # past the token cache: the look-up itself meets the outage
            for token in (api_token, TOKEN, "pb_" + secrets.token_urlsafe(32)):
                _all_unavailable(await _answers(http, token))
        finally:
            await asyncio.to_thread(servers.postgres.start)

        async def back() -> bool:
            return (await http.get("/v1/customers", headers={"Authorization": f"Bearer {api_token}"})).status_code == 200
        await wait_for(back, timeout=30)

        await asyncio.to_thread(servers.nats.stop)
        try:
            answers = await _answers(http, api_token)
            reads = [a for a in answers if a[0] in ("GET /v1/tokens",)]  # PostgreSQL only: still answers
            _all_unavailable([a for a in answers if a not in reads])
            assert all(status == 200 for _, status, _, _ in reads), reads
        finally:
            await asyncio.to_thread(servers.nats.start)
        await wait_for(back, timeout=30)
    assert not gateway.log_lines('"internal_error"') and not gateway.log_lines("request_failed"), gateway.tail()
