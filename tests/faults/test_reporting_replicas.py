"""Two replicas of reporting share the streams by customer partition, and stand in for each other.

Replica 0 of 2 reads the even partitions, replica 1 the odd ones. Under load (customer events
from the real customer service, call records from the switch), replica 1 is killed -9. Replica 0
stands in for its partitions and finishes the load alone; replica 1 is restarted, replica 0
hands its partitions back, and a second load is shared again. Afterwards: every event and every
record is in the projections once (complete), each customer's rows were written in stream
order through both moves (order), and the restarted replica 1 worked only on its own partitions
while replica 0 read the odd ones only as a stand-in (shared).

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
import orjson
import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from reporting.simulator import publish_backlog
from shared.partitions import PARTITIONS
from shared.settings import nats_servers
from shared.streams import CALLS, CUSTOMER_EVENTS, ensure_streams

from shared import bus

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


def metric(replica: ServiceProcess, pattern: str) -> dict[str, float]:
    """One metric of one replica, by consumer (durable): `pattern` matches the consumer, then the value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{replica.ops_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text)}


def handled_by(replica: ServiceProcess) -> dict[str, float]:
    """`patchbay_messages_total{outcome="handled"}` of one replica, by consumer (durable)."""
    return metric(replica, r'patchbay_messages_total\{consumer="([^"]+)",outcome="handled"\} (\S+)')


def partitions_of(durables: list[str]) -> set[int]:
    return {int(m.group(1)) for d in durables if (m := re.search(r"-p(\d+)$", d))}


def reading(replica: ServiceProcess) -> set[int]:
    """The partitions of the call records whose durable the replica reads now."""
    gauge = metric(replica, r'patchbay_partition_reading\{consumer="(reporting-summaries-calls-p\d+)"\} (\S+)')
    return partitions_of([d for d, v in gauge.items() if v == 1])


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


async def test_two_replicas_share_the_partitions_stand_in_and_hand_back_in_order_through_a_kill(
    servers: Servers, customer: ServiceProcess, embedded_tmp_path: Path,
) -> None:
    db = servers.database_url
    env = {"PATCHBAY_REPLICA_COUNT": "2", "PATCHBAY_PARTITION_FAILOVER_S": "1"}
    replicas = [
        ServiceProcess("reporting", service_env(servers, PATCHBAY_REPLICA_INDEX=str(i), **env),
                       embedded_tmp_path / f"reporting-{i}.log")
        for i in range(2)
    ]
    even, odd = set(range(0, PARTITIONS, 2)), set(range(1, PARTITIONS, 2))
    records = "SELECT count(*) FROM reporting.call_records"

    def each_on_its_own() -> bool:
        return reading(replicas[0]) == even and reading(replicas[1]) == odd

    async def all_records(n: int) -> bool:
        return await count(db, records) == n

    for r in replicas:
        r.start()
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner")
    try:
        for r in replicas:
            await asyncio.to_thread(r.wait_ready)
        await wait_for(each_on_its_own, timeout=30, message="each replica to read its own partitions")
        js = nc.jetstream()
        await ensure_streams(js, [CALLS])
        call_customers = [str(uuid.uuid4()) for _ in range(CUSTOMERS)]
        backlog = asyncio.create_task(publish_backlog(js, call_customers, RECORDS, days=3, seed=11,
                                                      with_starts=True))
        customer_ids = await _customer_traffic(nc)
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

        # replica 1 stays down: replica 0 stands in for its partitions and finishes the load alone
        await wait_for(lambda: all_records(RECORDS), timeout=120, interval=0.2,
                       message=f"{RECORDS} call records with replica 1 down (replica 0 standing in)")
        assert reading(replicas[0]) == even | odd
        stood_in = partitions_of([d for d, n in handled_by(replicas[0]).items() if n > 0])
        assert stood_in & odd, f"replica 0 read {sorted(stood_in)}"

        # replica 1 returns: replica 0 hands the odd partitions back; a second load is shared again
        replicas[1].start()
        await asyncio.to_thread(replicas[1].wait_ready)
        await wait_for(each_on_its_own, timeout=30, message="replica 0 to hand the odd partitions back")
        second = 2_000
        assert await publish_backlog(js, call_customers, second, days=3, seed=12, with_starts=True) == 2 * second
        await wait_for(lambda: all_records(RECORDS + second), timeout=60, interval=0.2,
                       message=f"{RECORDS + second} call records")

        # complete: every customer event once
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

        # shared: the restarted replica 1 read only its own partitions (its counters start at the
        # restart); every partition's durable read its share to the end
        back_again = partitions_of([d for d, n in handled_by(replicas[1]).items() if n > 0])
        assert back_again and back_again <= odd, f"replica 1 read partitions {sorted(back_again)}"
        for p in range(PARTITIONS):
            info = await js.consumer_info(CALLS.name, f"reporting-summaries-calls-p{p}")
            assert info.delivered.stream_seq > 0 and info.num_pending == 0, (p, info)
    finally:
        await nc.close()
        for r in replicas:
            r.stop()
        print(f"--- replica 1 log ---\n{replicas[1].tail(20)}")
