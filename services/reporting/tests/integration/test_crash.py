"""kill -9 of the reporting process in the middle of ingesting: after a restart every call record
counts exactly once (redelivered batches are absorbed by the call-id key)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from devtools.embedded import EmbeddedNats
from devtools.testing.jetstream import consumers_caught_up
from devtools.testing.waiting import wait_for
from reporting.simulator import make_call
from shared.streams import ensure_streams

from shared import bus

pytestmark = pytest.mark.servers
RECORDS = 20_000


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reporting", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


@pytest.fixture
def own_nats_url(embedded_tmp_path: Path) -> Iterator[str]:
    """A nats-server of this test's own: the durables are the table's, and the module's reporting has them."""
    server = EmbeddedNats(embedded_tmp_path / "nats")
    try:
        yield server.start()
    finally:
        server.stop()


async def test_kill_9_mid_ingest_then_every_record_counts_once(own_nats_url: str, make_database: Any) -> None:
    db = await make_database()
    module_nats_url = own_nats_url
    prefix = "reporting"
    env = os.environ | {"PATCHBAY_NATS_URL": module_nats_url, "PATCHBAY_DATABASE_URL": db,
                        "PATCHBAY_CONSUMER_ACK_WAIT_S": "2", "PATCHBAY_CONSUMER_BATCH": "500",
                        "PATCHBAY_LOG_LEVEL": "WARNING"}
    nc = await bus.connect(module_nats_url, "provisioner")
    js = nc.jetstream()
    await ensure_streams(js)
    customer = str(uuid.uuid4())
    rng = random.Random(42)
    now = datetime.now(UTC)
    expected = Decimal(0)
    pending = []
    for i in range(RECORDS):
        _, record = make_call(rng, customer, now - timedelta(hours=2, seconds=i))
        expected += Decimal(record["charge"])
        pending.append(await js.publish_async(f"calls.cdr.{customer}", json.dumps(record).encode()))
    await asyncio.gather(*pending)

    proc = await start(env)
    conn: asyncpg.Connection | None = None

    async def counted() -> int:
        nonlocal conn
        try:
            conn = conn or await asyncpg.connect(db, server_settings={"search_path": "reporting"})
            return int(await conn.fetchval(
                "SELECT coalesce(sum(attempts), 0) FROM call_hours WHERE customer_id = $1", customer))
        except (asyncpg.UndefinedTableError, OSError, asyncpg.PostgresError):
            return 0

    try:
        await wait_for(lambda: counted_at_least(counted, 2_000), timeout=60, interval=0.01,
                       message="the first records counted")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert await counted() < RECORDS  # it died half way
        proc = await start(env)

        async def all_counted() -> bool:
            return await counted() >= RECORDS

        await wait_for(all_counted, timeout=90, interval=0.1, message="every record counted")
        # every delivery acknowledged: nothing can come again, so the counts below are final
        await wait_for(lambda: consumers_caught_up(js, "CALLS", prefix), timeout=30,
                       message="the reporting consumers of CALLS to acknowledge everything")
        assert conn is not None
        row = await conn.fetchrow(
            "SELECT sum(attempts) AS n, sum(charge) AS charge FROM call_hours WHERE customer_id = $1", customer)
        assert row["n"] == RECORDS and row["charge"] == expected
        assert await conn.fetchval("SELECT count(*) FROM call_records WHERE customer_id = $1", customer) == RECORDS
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if conn is not None:
            await conn.close()
        await nc.close()


async def counted_at_least(counted: Any, n: int) -> bool:
    return bool(await counted() >= n)
