"""Horizontally sound: two alerts processes share the partitions and fire each crossing once.

Three processes on one database: replicas 0 and 1 of 2, and a third configured like replica 0
(a mistake the partition leases must absorb). The firings equal what the domain gives for the
same records judged once, in order.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alerts.bootstrap import AlertsService, AlertsSettings
from alerts.bootstrap import start as start_alerts
from alerts.domain.rules import Money, RuleState, step, value_of
from alerts.domain.windows import CallWindow, minute_of
from devtools.testing.waiting import holds_for, wait_for
from shared.contracts.alerts import AlertRule
from shared.money import LedgerTotals

from shared import bus

pytestmark = pytest.mark.servers
RULE = {"scope": {"all": True}, "area": "asr", "operator": "lt", "threshold": "40", "reset_threshold": "60",
        "window_minutes": 5, "min_attempts": 8}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def replicas(nats_url: str, make_database: Any) -> AsyncIterator[tuple[str, list[AlertsService]]]:
    db = await make_database()
    settings = [AlertsSettings(nats_url=nats_url, database_url=db, replica_index=i, replica_count=2)
                for i in (0, 1, 0)]
    running = [await start_alerts(s) for s in settings]
    yield db, running
    for svc in running:
        await svc.stop()


def calls(customers: list[str], rnd: random.Random) -> list[dict[str, Any]]:
    base = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for j in range(120):
        rate = 0.1 if (j // 30) % 2 == 0 else 0.95
        for cid in customers:
            end = (base + timedelta(seconds=10 * j)).isoformat()
            ok = rnd.random() < rate
            out.append({"call_id": uuid.uuid4().hex, "customer_id": cid, "started_at": end, "ended_at": end,
                        "answered_at": end if ok else None, "duration_s": 20 if ok else 0,
                        "billed_duration_s": 20 if ok else 0, "charge": "0", "cost": "0",
                        "disposition": "answered" if ok else "failed"})
    return out


def expected(rule: AlertRule, records: list[dict[str, Any]]) -> Counter[str]:
    """Firings per customer when every record is judged once, in order."""
    windows: dict[str, CallWindow] = {}
    states: dict[str, RuleState] = {}
    money = Money(LedgerTotals(), Decimal(0), Decimal(0), Decimal(0))
    fired: Counter[str] = Counter()
    for c in records:
        w = windows.setdefault(c["customer_id"], CallWindow())
        end = datetime.fromisoformat(c["ended_at"])
        w.add(minute_of(end), c["disposition"] == "answered", c["duration_s"], None)
        value = value_of(rule, w, money)
        if value is not None and step(rule, states.setdefault(c["customer_id"], RuleState(1)), value, end):
            fired[c["customer_id"]] += 1
    return fired


async def test_two_replicas_and_a_stray_copy_fire_each_crossing_once(
    nats_url: str, replicas: tuple[str, list[AlertsService]]
) -> None:
    db, running = replicas
    nc = await bus.connect(nats_url, "provisioner")
    try:
        body = {**RULE, "name": f"replicated {uuid.uuid4().hex[:6]}"}
        reply = json.loads((await nc.request("alerts.cmd.create", json.dumps({"rule": body}).encode(),
                                             timeout=10)).data)
        assert "error" not in reply, reply
        rule = AlertRule.model_validate(reply)
        rnd = random.Random(3)
        customers = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(40)]
        mine = set(customers)
        records = calls(customers, rnd)
        want = expected(rule, records)
        assert sum(want.values()) >= len(customers)
        js = nc.jetstream()
        for i in range(0, len(records), 500):
            acks = [await js.publish_async(f"calls.cdr.{r['customer_id']}", json.dumps(r).encode())
                    for r in records[i:i + 500]]
            await asyncio.gather(*acks)

        async def fired() -> Counter[str]:
            conn = await asyncpg.connect(db)
            try:
                rows = await conn.fetch("SELECT customer_id::text AS c FROM alerts.firings WHERE rule_id = $1",
                                        rule.id)
            finally:
                await conn.close()
            # this test's customers only: the worker's CALLS stream holds other tests' records, and
            # the durable the replicas share reads them too (an "all customers" rule judges them)
            return Counter(r["c"] for r in rows if r["c"] in mine)

        await wait_for(lambda: _total(fired, sum(want.values())), timeout=60, interval=0.2,
                       message="every crossing fired")
        final = await fired()
        await holds_for(lambda: _same(fired, final), 1.5, "no second firing of a crossing comes late")
        assert final == want
        # the work was shared: both replicas judged records
        assert all(svc.evaluator.evaluated > 0 for svc in running[:2]), [s.evaluator.evaluated for s in running]
    finally:
        await nc.drain()


async def _total(read: Any, n: int) -> bool:
    return sum((await read()).values()) >= n


async def _same(read: Any, seen: Counter[str]) -> bool:
    return bool(await read() == seen)
