"""Reporting killed -9 while ingesting call records, and a rebuild killed -9 half-way: it converges.

The projection after the crash and restart must equal what a rebuild from the streams gives,
row for row; a rebuild killed in the middle leaves the live tables untouched and a second
rebuild completes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.testing.waiting import wait_for
from reporting.simulator import publish_backlog
from shared.partitions import PARTITIONS, published_subject
from shared.settings import nats_servers
from shared.streams import CALLS, ensure_streams

from shared import bus

from .processes import Servers, ServiceProcess, running_servers, service_env
from .verify import assert_same_rows, count, snapshot, start_rebuild, wait_caught_up

pytestmark = [pytest.mark.servers, pytest.mark.faults]

RECORDS = 20_000
DUPLICATES = 2_000  # the switch sending records again: counted once
TABLES = ("call_records", "call_hours")
# which copy of a record sent twice is kept (its stream sequence) differs: live keeps the
# first, a rebuild the last (reported to reporting's owner)
VARIES = ("seq",)


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    """NATS without fsync on every write: this test kills reporting, not NATS."""
    with running_servers(embedded_tmp_path, sync_always=False) as running:
        yield running


async def test_ingestion_and_rebuild_killed_then_converge(servers: Servers, embedded_tmp_path: Path) -> None:
    db = servers.database_url
    customers = [str(uuid.uuid4()) for _ in range(20)]
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner")
    js = nc.jetstream()
    await ensure_streams(js, [CALLS])
    published = await publish_backlog(js, customers, RECORDS, days=10, seed=7)
    # the first records again, byte for byte, as a switch retrying after the dedup window would
    for seq in range(1, DUPLICATES + 1):
        again = await js.get_msg(CALLS.name, seq)
        assert again.subject is not None
        await js.publish(published_subject(again.subject, CALLS.partition_key), again.data or b"")
    await nc.close()
    assert published == RECORDS

    reporting = ServiceProcess("reporting", service_env(servers), embedded_tmp_path / "reporting.log")
    reporting.start()
    try:
        records = "SELECT count(*) FROM reporting.call_records"
        await wait_for(lambda: count(db, records), timeout=60, interval=0.01,
                       message="reporting to start ingesting")
        reporting.kill()  # in the middle of ingestion
        at_kill = await count(db, records)
        assert 0 < at_kill < RECORDS, f"{at_kill} records at the kill: nothing was tested"
        reporting.start()
        await asyncio.to_thread(reporting.wait_ready)

        async def all_in() -> bool:
            return await count(db, records) == RECORDS

        await wait_for(all_in, timeout=90, interval=0.2, message="every record ingested once")
        # the duplicates at the stream's end are applied (and ignored)
        await wait_caught_up(servers.nats_url, CALLS.name,
                             [f"reporting-summaries-calls-p{p}" for p in range(PARTITIONS)])
        live = await snapshot(db, TABLES, without=VARIES)
        assert len(live["call_records"]) == RECORDS

        # a rebuild killed half-way: the live tables answer, untouched
        first = start_rebuild(servers, "summaries", embedded_tmp_path / "rebuild.log")
        progress = "SELECT coalesce(max(done), 0) FROM reporting.rebuilds WHERE state = 'running'"
        await wait_for(lambda: count(db, progress), timeout=60, interval=0.01,
                       message="the rebuild to make progress")
        first.kill()
        assert first.wait(10) == -9, "the rebuild finished before the kill: nothing was tested"
        assert await snapshot(db, TABLES, without=VARIES) == live

        second = start_rebuild(servers, "summaries", embedded_tmp_path / "rebuild.log")
        code = await asyncio.to_thread(second.wait, 120)
        assert code == 0, (embedded_tmp_path / "rebuild.log").read_text()[-3000:]
        rebuilt = await snapshot(db, TABLES, without=VARIES)
        assert_same_rows(rebuilt, live)
        states = await count(db, "SELECT count(*) FROM reporting.rebuilds WHERE state = 'switched'")
        assert states == 1
    finally:
        reporting.stop()
        print(f"--- reporting log ---\n{reporting.tail(40)}")
    print(json.dumps({"records_at_kill": at_kill}))
