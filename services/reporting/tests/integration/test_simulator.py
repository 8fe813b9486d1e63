"""The simulator's traffic fills the summaries: live calls come and go, a backlog lands in its days."""

from __future__ import annotations

import uuid

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from reporting.simulator import publish_backlog, run_live

from .conftest import call

pytestmark = pytest.mark.servers


async def test_live_traffic_then_all_calls_ended(nc: NatsClient) -> None:
    cid = str(uuid.uuid4())
    started, ended = await run_live(nc.jetstream(), [cid], rate=40, seconds=1.0, time_scale=0.002, seed=3)
    assert started == ended >= 30

    async def settled() -> bool:
        live = await call(nc, "reporting.query.summary", {"customer_id": cid, "period": "live"})
        return bool(live["totals"]["attempts"] == started and live["channels_in_use"] == 0)

    await wait_for(settled, timeout=10, message="every simulated call counted and ended")


async def test_backlog_spreads_over_past_days(nc: NatsClient) -> None:
    cid = str(uuid.uuid4())
    assert await publish_backlog(nc.jetstream(), [cid], 300, days=10, seed=5, window=50) == 300

    async def counted() -> dict | None:  # type: ignore[type-arg]
        reply = await call(nc, "reporting.query.summary", {"customer_id": cid, "period": "daily"})
        return reply if reply["totals"]["attempts"] == 300 else None

    reply = await wait_for(counted, timeout=10, message="the backlog counted")
    assert len(reply["rows"]) >= 9
