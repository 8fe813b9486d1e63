"""kill -9 of the gateway under HTTP load (Idempotency-Key, retried by the client): nothing lost or doubled."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devtools.embedded import free_port

from .load import HttpCommandLoad
from .processes import Servers, ServiceProcess, running_service, service_env
from .verify import assert_exactly_once

pytestmark = [pytest.mark.servers, pytest.mark.faults]

TOKEN = "pb_fault_" + secrets.token_urlsafe(32)


@pytest.fixture
def gateway(servers: Servers, customer: ServiceProcess, embedded_tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(servers, PATCHBAY_ADMIN_TOKEN=TOKEN, PATCHBAY_HTTP_PORT=str(free_port()))
    with running_service("gateway", env, embedded_tmp_path / "gateway.log") as proc:
        yield proc


async def test_kill_9_of_the_gateway_mid_load(servers: Servers, gateway: ServiceProcess) -> None:
    base = f"http://127.0.0.1:{gateway.env['PATCHBAY_HTTP_PORT']}"
    async with httpx.AsyncClient(base_url=base, timeout=3,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        load = HttpCommandLoad(http=http, clients=8)
        await load.survives_kills(gateway, kills=1, acked=150)
    await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
