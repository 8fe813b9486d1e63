"""Rebuild: a rebuilt projection equals the live one row for row, also when switched over under load."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from reporting.bootstrap import ReportingService, all_projections
from reporting.projections.base import Tables, checkpoints
from reporting.projections.rebuild import Rebuilder
from reporting.settings import ReportingSettings
from shared.db import create_pool

from .conftest import call, cdr, create_customer, publish

pytestmark = pytest.mark.servers
Snapshot = dict[str, list[tuple[str, ...]]]


async def snapshot(service: ReportingService) -> Snapshot:
    """Every row of every projection table, as sorted text tuples."""
    out: Snapshot = {}
    async with service.pool.acquire() as conn:
        for projection in all_projections():
            for table in projection.tables:
                if table == projection.checkpoint_table:  # live: a row per partition; compare what it means
                    marks = await checkpoints(conn, projection, Tables.live(projection.tables))
                    out[table] = sorted((k, str(v)) for k, v in marks.items())
                    continue
                rows = await conn.fetch(f"SELECT * FROM {table}")
                out[table] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return out


async def indexes(service: ReportingService) -> set[tuple[str, str]]:
    """Every index of the projection tables, by table and name, with its definition's shape."""
    rows = await service.pool.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'reporting'")
    return {(r["tablename"], r["indexname"] + " " + r["indexdef"].split(" USING ")[1]) for r in rows}


async def storage(service: ReportingService) -> dict[str, list[str] | None]:
    """Every projection table's storage options (reloptions) and statistics targets set on columns."""
    rows = await service.pool.fetch(
        "SELECT c.relname, c.reloptions, array_agg(a.attname || '=' || a.attstattarget ORDER BY a.attname)"
        " FILTER (WHERE a.attstattarget >= 0) AS targets FROM pg_class c JOIN pg_namespace n ON n.oid ="
        " c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
        " WHERE n.nspname = 'reporting' AND c.relkind = 'r' GROUP BY 1, 2")
    return {r["relname"]: [*(r["reloptions"] or []), *(r["targets"] or [])] for r in rows}


async def quiesce(nc: NatsClient) -> None:
    """Wait until every projection consumer has handled everything and nothing new arrives."""
    last: list[Any] = [None]

    async def settled() -> bool:
        lag = await call(nc, "reporting.query.lag", {})
        state = [(s["stream"], s["stream_last_seq"], s["checkpoint"]) for s in lag["streams"]]
        # the customer service turns billing.payments into PaymentRecorded events: it is done too
        payments = [c for c in await nc.jetstream().consumers_info("BILLING_EVENTS")
                    if c.name.startswith("customer-billing-payments")]
        busy = any(c.num_pending or c.num_ack_pending for c in payments)
        quiet = all(s["behind"] == 0 for s in lag["streams"]) and state == last[0] and not busy
        last[0] = state
        return quiet

    await wait_for(settled, timeout=30, interval=0.3, message="projections caught up")


async def workload(nc: NatsClient, rounds: int, customers: list[str]) -> None:
    """Customer changes, call starts and records (some twice), payments, other streams' events."""
    js = nc.jetstream()
    rng = random.Random(rounds)
    for i in range(rounds):
        if i % 10 == 0:
            customers.append((await create_customer(nc, tax="5"))["id"])
        cid = rng.choice(customers)
        await call(nc, "customer.cmd.update", {"customer_id": cid, "changes": {"notes": f"n{i}",
                                                                                "channels": i % 7}})
        started = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 40))
        record = cdr(cid, started, disposition=rng.choice(["answered", "answered", "busy", "failed"]),
                     duration_s=rng.randrange(1, 900), charge=f"{rng.randrange(1, 9999) / 10000:.4f}",
                     cost=f"{rng.randrange(1, 5000) / 10000:.4f}", pdd_ms=rng.choice([None, 900, 2500]))
        start = {k: record[k] for k in ("call_id", "customer_id", "started_at")}
        await publish(js, f"calls.started.{cid}", start)
        if i % 7 == 3:  # a start sent twice: the rebuild's COPY of starts falls back to ON CONFLICT
            await publish(js, f"calls.started.{cid}", start)
        await publish(js, f"calls.cdr.{cid}", record)
        if i % 5 == 0:
            await publish(js, f"calls.cdr.{cid}", record)  # a duplicate
            await publish(js, f"billing.payments.{cid}", {
                "payment_id": uuid.uuid4().hex, "customer_id": cid, "amount": "1.5", "currency": "USD",
                "received_at": started.isoformat()})
        if i % 3 == 0:
            await publish(js, f"calls.started.{cid}", {
                "call_id": uuid.uuid4().hex, "customer_id": cid, "started_at": datetime.now(UTC).isoformat()})
    await js.publish(f"calls.cdr.{customers[0]}", b'{"poison": true}')


async def test_rebuild_from_the_cli_equals_the_live_projection(
    nc: NatsClient, reporting: ReportingService, reporting_settings: ReportingSettings
) -> None:
    customers: list[str] = []
    await workload(nc, 60, customers)
    cid = customers[0]
    await quiesce(nc)
    # an operator's tuning of the live tables survives the rebuild
    await reporting.pool.execute("ALTER TABLE call_records SET (fillfactor = 90);"
                                 " ALTER TABLE call_hours SET (autovacuum_enabled = true);"
                                 " ALTER TABLE audit_log ALTER COLUMN event SET STATISTICS 0")
    before = await snapshot(reporting)
    indexes_before = await indexes(reporting)
    storage_before = await storage(reporting)
    assert "fillfactor=90" in (storage_before["call_records"] or [])
    assert len(before["audit_log"]) > 60 and len(before["call_records"]) == 60
    env = os.environ | {"PATCHBAY_NATS_URL": reporting_settings.nats_url,
                        "PATCHBAY_DATABASE_URL": reporting_settings.database_url, "PATCHBAY_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reporting", "rebuild", "all", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.decode().count("switched over") == 2, out.decode()
    assert b"rebuild audit" in err  # the progress bar
    after = await snapshot(reporting)
    assert after == before
    assert await indexes(reporting) == indexes_before  # same names, same definitions
    assert await storage(reporting) == storage_before  # and autovacuum on again (off while filling)
    lag = await call(nc, "reporting.query.lag", {})
    assert {r["projection"]: r["state"] for r in lag["rebuilds"]} == {
        "audit": "switched", "summaries": "switched"}
    assert all(r["done"] == r["total"] for r in lag["rebuilds"])
    # the service goes on with the new tables
    await workload(nc, 5, customers)
    await quiesce(nc)
    assert "error" not in await call(nc, "reporting.query.summary", {"customer_id": cid})


async def test_switch_over_under_load_loses_and_doubles_nothing(
    nc: NatsClient, reporting: ReportingService
) -> None:
    customers: list[str] = []
    await workload(nc, 30, customers)
    await quiesce(nc)
    stop = asyncio.Event()
    answered = 0

    async def traffic() -> None:
        while not stop.is_set():
            await workload(nc, 10, customers)

    async def readers() -> None:
        nonlocal answered
        while not stop.is_set():
            reply = await call(nc, "reporting.query.summary", {"customer_id": customers[0], "period": "monthly",
                                                               "from": "2030-01-01", "to": "2030-03-31"})
            assert "error" not in reply, reply
            answered += 1
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(traffic()), asyncio.create_task(readers())]
    js = nc.jetstream()  # a rebuild is an operator's: the provisioner's connection (ADR 16)
    for projection in all_projections():
        await Rebuilder(reporting.pool, js, projection, batch=50).run()
    stop.set()
    await asyncio.gather(*tasks)
    assert answered > 0
    await quiesce(nc)
    live = await snapshot(reporting)
    for projection in all_projections():
        await Rebuilder(reporting.pool, js, projection).run()
    assert await snapshot(reporting) == live


async def test_a_rebuild_takes_no_more_than_two_connections_of_its_pool(
    nc: NatsClient, reporting: ReportingService, reporting_settings: ReportingSettings
) -> None:
    """The advisory lock's connection and the writer's: a third taken meanwhile (the progress row,
    once) waited forever when the pool's others waited on the switch-over's table lock (the
    service's pool, shared with the live consumers and queries, hung the switch-over test so)."""
    customers: list[str] = []
    await workload(nc, 10, customers)
    await quiesce(nc)
    live = await snapshot(reporting)
    pool = await create_pool(reporting_settings.database_url, "reporting", min_size=1, max_size=2)
    try:
        for projection in all_projections():
            await asyncio.wait_for(Rebuilder(pool, nc.jetstream(), projection).run(), 60)
    finally:
        await pool.close()
    assert await snapshot(reporting) == live


async def test_a_rebuild_in_tiny_batches_equals_the_live_projection(
    nc: NatsClient, reporting: ReportingService
) -> None:
    """Batches of 3: duplicates (call records sent twice) fall in separate batches of the bulk
    replay, whose COPY then fails and the batch goes in the normal way; the result is the same."""
    customers: list[str] = []
    await workload(nc, 25, customers)
    await quiesce(nc)
    live = await snapshot(reporting)
    js = nc.jetstream()
    for projection in all_projections():
        await Rebuilder(reporting.pool, js, projection, batch=3).run()
    assert await snapshot(reporting) == live
