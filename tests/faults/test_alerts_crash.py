"""The alerts evaluator killed -9 in the middle of a stream of call records: no firing lost or doubled.

An oracle judges the same records with the alerts domain (per customer, in stream order, at event
time); after the kill and a restart that catches up from its checkpoints, the stored firings are
exactly the oracle's, and ALERT_EVENTS holds one AlertFired per firing.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alerts.domain.rules import Money, RuleState, step, value_of
from alerts.domain.windows import CallWindow, minute_of
from devtools.testing.waiting import wait_for
from shared.contracts.alerts import AlertRule
from shared.money import LedgerTotals
from shared.partitions import PARTITIONS
from shared.settings import nats_servers

from shared import bus

from .processes import Servers, ServiceProcess, running_servers, service_env
from .verify import count, wait_caught_up

pytestmark = [pytest.mark.servers, pytest.mark.faults]

CUSTOMERS = 100
CALLS_EACH = 160  # phases of 40: bad, good, bad, good -> two crossings per customer, mostly
RULE = {"name": "ASR crash", "scope": {"all": True}, "area": "asr", "operator": "lt", "threshold": "40",
        "reset_threshold": "60", "window_minutes": 5, "min_attempts": 10}


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    """NATS without fsync on every write: this test kills the evaluator, not NATS."""
    with running_servers(embedded_tmp_path, sync_always=False) as running:
        yield running


def records(seed: int = 11) -> list[dict[str, Any]]:
    """Every customer's calls, interleaved as a switch would send them; 10 s apart per customer."""
    rnd = random.Random(seed)
    base = datetime.now(UTC) - timedelta(hours=1)
    ids = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(CUSTOMERS)]
    out = []
    for j in range(CALLS_EACH):
        answer_rate = 0.15 if (j // 40) % 2 == 0 else 0.9
        for cid in ids:
            end = base + timedelta(seconds=10 * j)
            answered = rnd.random() < answer_rate
            out.append({"call_id": uuid.uuid4().hex, "customer_id": cid, "started_at": end.isoformat(),
                        "answered_at": end.isoformat() if answered else None, "ended_at": end.isoformat(),
                        "duration_s": 30 if answered else 0, "billed_duration_s": 30 if answered else 0,
                        "charge": "0", "cost": "0", "disposition": "answered" if answered else "failed"})
    return out


def oracle(rule: AlertRule, calls: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(customer, value) of every firing the domain gives for these calls in this order."""
    windows: dict[str, CallWindow] = {}
    states: dict[str, RuleState] = {}
    money = Money(LedgerTotals(), Decimal(0), Decimal(0), Decimal(0))
    fired: Counter[tuple[str, str]] = Counter()
    for c in calls:
        w = windows.setdefault(c["customer_id"], CallWindow())
        end = datetime.fromisoformat(c["ended_at"])
        w.add(minute_of(end), c["disposition"] == "answered", c["duration_s"], None)
        value = value_of(rule, w, money)
        if value is None:
            continue
        if step(rule, states.setdefault(c["customer_id"], RuleState(1)), value, end):
            fired[(c["customer_id"], format(value.normalize(), "f"))] += 1
    return fired


async def test_killed_mid_stream_no_firing_lost_or_doubled(servers: Servers, embedded_tmp_path: Path) -> None:
    db = servers.database_url
    alerts = ServiceProcess("alerts", service_env(servers), embedded_tmp_path / "alerts.log")
    alerts.start()
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner")
    try:
        await asyncio.to_thread(alerts.wait_ready)
        reply = json.loads((await nc.request("alerts.cmd.create", json.dumps({"rule": RULE}).encode(),
                                             timeout=10)).data)
        assert "error" not in reply, reply
        rule = AlertRule.model_validate(reply)
        calls = records()
        expected = oracle(rule, calls)
        assert sum(expected.values()) >= CUSTOMERS, "the records cross too seldom to test anything"

        js = nc.jetstream()

        async def publish_all() -> None:
            for i in range(0, len(calls), 500):
                acks = [await js.publish_async(f"calls.cdr.{c['customer_id']}", json.dumps(c).encode())
                        for c in calls[i:i + 500]]
                await asyncio.gather(*acks)

        # the kill comes at the first firings, while the records still arrive: however fast the
        # evaluator is, it has not judged the whole stream yet
        publishing = asyncio.create_task(publish_all())
        fired = "SELECT count(*) FROM alerts.firings"
        await wait_for(lambda: count(db, fired), timeout=60, interval=0.01, message="the first firings")
        alerts.kill()  # in the middle of the stream
        at_kill = await count(db, fired)
        await publishing
        assert 0 < at_kill < sum(expected.values()), f"{at_kill} firings at the kill: nothing was tested"
        alerts.start()
        await asyncio.to_thread(alerts.wait_ready)
        await wait_caught_up(servers.nats_url, "CALLS", [f"alerts-calls-p{p}" for p in range(PARTITIONS)],
                             timeout=120)

        conn = await asyncpg.connect(db)
        try:
            rows = await conn.fetch("SELECT customer_id::text AS c, value FROM alerts.firings")
        finally:
            await conn.close()
        got = Counter((r["c"], format(Decimal(r["value"]).normalize(), "f")) for r in rows)
        assert got == expected, f"missing {expected - got}, extra {got - expected}"

        async def events_published() -> int:
            info = await js.stream_info("ALERT_EVENTS")
            return int(info.state.messages)

        await wait_for(lambda: _equals(events_published, len(rows)), timeout=30,
                       message="one AlertFired per firing on ALERT_EVENTS")
    finally:
        await nc.close()
        alerts.stop()
        print(f"--- alerts log ---\n{alerts.tail(40)}")


async def _equals(read: Any, n: int) -> bool:
    return bool(await read() == n)
