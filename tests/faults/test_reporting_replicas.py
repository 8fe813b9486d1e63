"""Two replicas of reporting share the streams by customer partition.

Replica 0 of 2 reads the even partitions, replica 1 the odd ones. Under load (customer events
from the real customer service, call records from the switch), replica 1 is killed -9 and
restarted. Afterwards: every event and every record is in the projections once (complete),
each customer's rows were written in stream order (order), and each replica worked only on
its own partitions (shared).

Order is read from PostgreSQL itself: a row's `xmin` is the transaction that wrote it, and one
partition's batches are written one after another, so along a customer's stream sequence the
writing transaction id never goes down. A batch handled out of order (a redelivery overtaken
by later messages, two readers on one partition) would show as a step back.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from reporting.simulator import publish_backlog
from shared.partitions import PARTITIONS
from shared.settings import nats_servers
from shared.streams import CALLS, CUSTOMER_EVENTS, ensure_streams
from shared.testing.waiting import wait_for

from .processes import Servers, ServiceProcess, running_servers, service_env
from .verify import count

pytestmark = [pytest.mark.servers, pytest.mark.faults]

CUSTOMERS = 40
UPDATES = 4
RECORDS = 30_000
# along each customer's stream sequence, the writing transaction never goes back
OUT_OF_ORDER = """
SELECT customer_id, seq, x, before FROM (
  SELECT customer_id, seq, xmin::text::bigint AS x,
         lag(xmin::text::bigint) OVER (PARTITION BY customer_id ORDER BY seq) AS before
  FROM reporting.{table} {where}) s
WHERE x < before LIMIT 5
"""


@pytest.fixture
def servers(embedded_tmp_path: Path) -> Iterator[Servers]:
    """NATS without fsync on every write: this test kills a reporting replica, not NATS."""
    with running_servers(embedded_tmp_path, sync_always=False) as running:
        yield running


def handled_by(replica: ServiceProcess) -> dict[str, float]:
    """`patchbay_messages_total{outcome="handled"}` of one replica, by consumer (durable)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{replica.ops_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r'patchbay_messages_total\{consumer="([^"]+)",outcome="handled"\} (\S+)', text):
        out[m.group(1)] = float(m.group(2))
    return out


async def _customer_traffic(nc: NatsClient) -> list[str]:
    """Customers created and updated through the customer service; their ids."""
    async def call(subject: str, body: dict[str, object]) -> dict[str, object]:
        reply = orjson.loads((await nc.request(subject, orjson.dumps(body), timeout=15)).data)
        assert "error" not in reply, reply
        return reply  # type: ignore[no-any-return]

    ids = []
    for n in range(CUSTOMERS):
        card = await call("customer.cmd.create", {"customer": {"name": f"replica-{n}-{uuid.uuid4().hex[:6]}"}})
        ids.append(str(card["id"]))
    for step in range(UPDATES):
        await asyncio.gather(*(call("customer.cmd.update", {"customer_id": cid, "changes": {"channels": step + 1}})
                               for cid in ids))
    return ids


async def test_two_replicas_share_the_partitions_complete_and_in_order_through_a_kill(
    servers: Servers, customer: ServiceProcess, embedded_tmp_path: Path,
) -> None:
    db = servers.database_url
    replicas = [
        ServiceProcess("reporting", service_env(servers, PATCHBAY_REPLICA_INDEX=str(i), PATCHBAY_REPLICA_COUNT="2"),
                       embedded_tmp_path / f"reporting-{i}.log")
        for i in range(2)
    ]
    for r in replicas:
        r.start()
    nc = await nats.connect(nats_servers(servers.nats_url))
    try:
        for r in replicas:
            await asyncio.to_thread(r.wait_ready)
        js = nc.jetstream()
        await ensure_streams(js, [CALLS])
        call_customers = [str(uuid.uuid4()) for _ in range(CUSTOMERS)]
        backlog = asyncio.create_task(publish_backlog(js, call_customers, RECORDS, days=3, seed=11,
                                                      with_starts=True))
        customer_ids = await _customer_traffic(nc)

        records = "SELECT count(*) FROM reporting.call_records"
        watch = await asyncpg.connect(db)  # one connection: the kill must follow the count closely

        async def a_fifth_in() -> bool:
            try:
                return int(await watch.fetchval(records)) >= RECORDS // 5
            except asyncpg.UndefinedTableError:
                return False

        try:
            await wait_for(a_fifth_in, timeout=60, interval=0.002, message="the replicas to be ingesting")
            replicas[1].kill()  # in the middle of the load
        finally:
            await watch.close()
        at_kill = await count(db, records)
        published = await backlog
        assert published == 2 * RECORDS
        assert 0 < at_kill < RECORDS, f"{at_kill} records at the kill: nothing was in flight"
        replicas[1].start()
        await asyncio.to_thread(replicas[1].wait_ready)

        # complete: every record once, every customer event once
        async def all_records() -> bool:
            return await count(db, records) == RECORDS

        await wait_for(all_records, timeout=120, interval=0.2, message=f"{RECORDS} call records")
        events = (await js.stream_info(CUSTOMER_EVENTS.name)).state.messages
        assert events == CUSTOMERS * (1 + UPDATES)
        audit = "SELECT count(*) FROM reporting.audit_log WHERE stream = 'CUSTOMER_EVENTS'"

        async def all_events() -> bool:
            return await count(db, audit) == events

        await wait_for(all_events, timeout=60, interval=0.2, message=f"{events} customer events audited")
        assert await count(db, "SELECT count(DISTINCT customer_id) FROM reporting.audit_log") == CUSTOMERS
        assert await count(db, "SELECT count(*) FROM reporting.live_calls") == 0  # every start ended

        # in order: along each customer's sequence, the writing transaction never steps back
        conn = await asyncpg.connect(db)
        try:
            for table, where in (("audit_log", "WHERE stream = 'CUSTOMER_EVENTS'"), ("call_records", "")):
                back = await conn.fetch(OUT_OF_ORDER.format(table=table, where=where))
                assert not back, f"{table}: a customer's rows written out of stream order: {back}"
            versions = await conn.fetch(
                "SELECT customer_id, array_agg(version ORDER BY seq) AS v FROM reporting.audit_log"
                " WHERE stream = 'CUSTOMER_EVENTS' GROUP BY customer_id")
        finally:
            await conn.close()
        assert {r["customer_id"] for r in versions} == set(customer_ids)
        assert all(r["v"] == list(range(1, UPDATES + 2)) for r in versions)

        # shared: each replica handled messages, and only on its own partitions (the counters of
        # replica 1 start again at its restart); every partition's durable read its share to the end
        for index, replica in enumerate(replicas):
            handled = [d for d, n in handled_by(replica).items() if n > 0]
            parts = {int(m.group(1)) for d in handled if (m := re.search(r"-p(\d+)$", d))}
            assert parts, f"replica {index} handled nothing: {handled}"
            assert all(p % 2 == index for p in parts), f"replica {index} read partitions {sorted(parts)}"
        for p in range(PARTITIONS):
            info = await js.consumer_info(CALLS.name, f"reporting-summaries-calls-p{p}")
            assert info.delivered.stream_seq > 0 and info.num_pending == 0, (p, info)
    finally:
        await nc.close()
        for r in replicas:
            r.stop()
        print(f"--- replica 1 log ---\n{replicas[1].tail(20)}")
