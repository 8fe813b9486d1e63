"""kill -9 of the customer service under load, then a restart: nothing acknowledged is lost or
doubled, and the audit log reporting projects from the events equals what a rebuild gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.streams import CUSTOMER_EVENTS

from .load import CommandLoad
from .processes import Servers, ServiceProcess, running_service, service_env
from .verify import assert_exactly_once, assert_same_rows, count, snapshot, start_rebuild

pytestmark = [pytest.mark.servers, pytest.mark.faults]


async def test_kill_9_mid_load_then_restart(servers: Servers, customer: ServiceProcess,
                                            client: NatsClient, embedded_tmp_path: Path) -> None:
    with running_service("reporting", service_env(servers), embedded_tmp_path / "reporting.log"):
        load = CommandLoad(client, clients=16)
        await load.survives_kills(customer, kills=2, acked=300)
        checked = await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
        assert checked >= len(load.acked)

        # the projection converges: every event audited once, the same rows a rebuild gives
        db = servers.database_url
        events = (await client.jetstream().stream_info(CUSTOMER_EVENTS.name)).state.messages
        audited = "SELECT count(*) FROM reporting.audit_log WHERE stream = 'CUSTOMER_EVENTS'"

        async def all_audited() -> bool:
            return await count(db, audited) == events

        await wait_for(all_audited, timeout=60, interval=0.2, message=f"{events} customer events audited")
        live = await snapshot(db, ["audit_log"])
        rebuild = start_rebuild(servers, "audit", embedded_tmp_path / "rebuild.log")
        code = await asyncio.to_thread(rebuild.wait, 120)
        assert code == 0, (embedded_tmp_path / "rebuild.log").read_text()[-3000:]
        assert_same_rows(await snapshot(db, ["audit_log"]), live)
