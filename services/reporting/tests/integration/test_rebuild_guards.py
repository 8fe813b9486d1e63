"""Rebuild guards: a stream that lost history is refused (unless --allow-shrink); progress counts each message once."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NatsClient
from reporting.bootstrap import ReportingService
from reporting.projections.audit import AuditProjection
from reporting.projections.calls import CallsProjection
from reporting.projections.rebuild import Rebuilder
from reporting.projections.rebuild_guards import RebuildRefused
from reporting.settings import ReportingSettings
from shared.streams import CUSTOMER_EVENTS, ensure_streams

from .conftest import call, cdr, create_customer, publish
from .test_rebuild import quiesce

pytestmark = pytest.mark.servers


async def _rows(service: ReportingService, table: str) -> int:
    return int(await service.pool.fetchval(f"SELECT count(*) FROM {table}"))


async def test_progress_counts_each_message_once(nc: NatsClient, reporting: ReportingService) -> None:
    js = nc.jetstream()
    cid = (await create_customer(nc))["id"]
    before = (await js.stream_info("CALLS")).state.messages
    await publish(js, f"calls.cdr.{cid}", cdr(cid, datetime(2030, 1, 2, tzinfo=UTC)))
    for _ in range(6):  # malformed after the last good one: the checkpoint stays behind them
        await js.publish(f"calls.cdr.{cid}", b'{"poison": true}')
    await quiesce(nc)
    seen: list[tuple[int, int]] = []
    result = await Rebuilder(reporting.pool, js, CallsProjection(),
                             progress=lambda done, total: seen.append((done, total))).run()
    assert (result.events, result.skipped) == (before + 7, 6)
    assert seen[-1] == (before + 7, before + 7)


async def test_a_stream_that_lost_history_is_refused(
    nc: NatsClient, reporting: ReportingService, reporting_settings: ReportingSettings,
) -> None:
    js = nc.jetstream()
    for _ in range(3):
        cid = (await create_customer(nc))["id"]
        await call(nc, "customer.cmd.update", {"customer_id": cid, "changes": {"notes": "x"}})
    await quiesce(nc)
    live = await _rows(reporting, "audit_log")
    assert live >= 6
    first = (await js.stream_info(CUSTOMER_EVENTS.name)).state.first_seq
    await js.purge_stream(CUSTOMER_EVENTS.name, seq=first + 2)  # the head is gone

    with pytest.raises(RebuildRefused, match="CUSTOMER_EVENTS starts at sequence"):
        await Rebuilder(reporting.pool, js, AuditProjection()).run()
    assert await _rows(reporting, "audit_log") == live  # the live tables are kept
    lag = await call(nc, "reporting.query.lag", {})
    assert {r["projection"]: r["state"] for r in lag["rebuilds"]}["audit"] == "failed"

    # a data dir switched to new, empty streams (the cluster switch): refused by the CLI
    await js.delete_stream(CUSTOMER_EVENTS.name)
    await ensure_streams(js, [CUSTOMER_EVENTS])
    env = os.environ | {"PATCHBAY_NATS_URL": reporting_settings.nats_url,
                        "PATCHBAY_DATABASE_URL": reporting_settings.database_url, "PATCHBAY_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reporting", "rebuild", "audit", "--no-progress", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 4, out.decode() + err.decode()
    assert "was replaced" in err.decode() and "--allow-shrink" in err.decode(), err.decode()
    assert await _rows(reporting, "audit_log") == live

    rebuilder = Rebuilder(reporting.pool, js, AuditProjection(), allow_shrink=True)
    await rebuilder.run()  # the operator's explicit choice
    assert await _rows(reporting, "audit_log") < live
    assert any("rows rebuilt against" in w for w in rebuilder.warnings), rebuilder.warnings


async def test_a_call_a_lagging_partition_still_shows_live_does_not_refuse_the_switch(
    nc: NatsClient, reporting: ReportingService
) -> None:
    """The switch-over catches up to the most advanced partition's checkpoint (one per stream), so
    a call whose record a lagging live partition has not applied yet is over in the rebuilt
    tables: fewer live calls, no history lost. Under load the guard refused such a switch
    (test_switch_over_under_load: "live_calls: 28 rows rebuilt against 29 live")."""
    js = nc.jetstream()
    cid = (await create_customer(nc))["id"]
    started = datetime(2030, 1, 3, tzinfo=UTC)
    record = cdr(cid, started)
    await publish(js, f"calls.started.{cid}", {k: record[k] for k in ("call_id", "customer_id", "started_at")})
    await publish(js, f"calls.cdr.{cid}", record)
    await quiesce(nc)
    # the live tables as a partition shows them that applied the start and not yet the record
    await reporting.pool.execute("INSERT INTO live_calls (call_id, customer_id, started_at) VALUES ($1, $2, $3)",
                                 record["call_id"], cid, started)
    live = {t: await _rows(reporting, t) for t in ("call_records", "call_hours", "live_calls")}
    await Rebuilder(reporting.pool, js, CallsProjection()).run()
    assert await _rows(reporting, "live_calls") == live["live_calls"] - 1
    assert not await reporting.pool.fetchval("SELECT count(*) FROM live_calls WHERE call_id = $1", record["call_id"])
    assert {t: await _rows(reporting, t) for t in ("call_records", "call_hours")} == {
        t: live[t] for t in ("call_records", "call_hours")}
