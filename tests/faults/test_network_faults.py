"""A slow link between a service (customer, reporting) and NATS or PostgreSQL, cut mid-stream under load.

The service reaches the server through `FaultyLink` (latency both ways); the test cuts every
open connection while commands and outbox batches are in flight. Nothing acknowledged is
lost, nothing is applied twice, and the service recovers by itself (never restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from reporting.projections.live import PromptConsumer
from reporting.simulator import publish_backlog
from shared.consumer import ConsumerSpec
from shared.partitions import PARTITIONS
from shared.runtime import cancel_tasks
from shared.settings import nats_servers
from shared.stream_replay import stream_seq
from shared.streams import CALLS, StreamSpec, ensure_streams

from shared import bus

from .load import CommandLoad
from .processes import Servers, ServiceProcess, service_env
from .proxy import FaultyLink
from .verify import assert_exactly_once, count, wait_caught_up

pytestmark = [pytest.mark.servers, pytest.mark.faults]
CUTS = 3


async def link_to(url: str, delay_s: float) -> FaultyLink:
    """A proxy in front of the server of `url`."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return await FaultyLink(parts.hostname, parts.port, delay_s=delay_s).start()


@pytest_asyncio.fixture(loop_scope="session")
async def links(servers: Servers) -> AsyncIterator[dict[str, FaultyLink]]:
    """One proxy to NATS and one to PostgreSQL, with a little latency each."""
    made = {"nats": await link_to(servers.nats_url, 0.01), "postgres": await link_to(servers.database_url, 0.002)}
    yield made
    for link in made.values():
        await link.close()


async def customer_through(servers: Servers, links: dict[str, FaultyLink], through: str,
                           log: Path) -> ServiceProcess:
    """The customer service with its `through` server behind the proxy, ready."""
    env = service_env(servers)
    key = {"nats": "PATCHBAY_NATS_URL", "postgres": "PATCHBAY_DATABASE_URL"}[through]
    env[key] = links[through].url(env[key])
    proc = ServiceProcess("customer", env, log)
    proc.start()
    await asyncio.to_thread(proc.wait_ready)  # in a thread: the proxy runs on this loop
    return proc


async def cut_under_load(link: FaultyLink, load: CommandLoad, proc: ServiceProcess) -> int:
    """Cut every connection CUTS times, each after 100 more commands acknowledged; how many were cut."""
    cut = 0
    load.start()
    try:
        await load.wait_acked(100)
        for _ in range(CUTS):
            cut += link.cut()
            await load.wait_acked(100)
    finally:
        await load.stop()
    load.assert_survived()
    assert proc.starts == 1 and proc.proc is not None and proc.proc.poll() is None, proc.tail()
    assert await asyncio.to_thread(proc.ready), "not ready after the cuts:\n" + proc.tail()
    return cut


@pytest.mark.parametrize("through", ["nats", "postgres"])
async def test_a_slow_link_cut_mid_batch(servers: Servers, links: dict[str, FaultyLink], client: NatsClient,
                                         embedded_tmp_path: Path, through: str) -> None:
    link = links[through]
    proc = await customer_through(servers, links, through, embedded_tmp_path / "customer.log")
    load = CommandLoad(client, clients=16)
    try:
        cut = await cut_under_load(link, load, proc)
        assert cut >= CUTS and link.connections > cut, (cut, link.connections)  # it reconnected each time
        # the relay, still behind the link, publishes the rest: each event once
        await assert_exactly_once(servers.database_url, servers.nats_url, load.acked.values())
    finally:
        await asyncio.to_thread(proc.stop)
        print(f"--- customer log ---\n{proc.tail(60)}")


RECORDS = 5_000


@pytest.mark.parametrize("through", ["nats", "postgres"])
async def test_reporting_ingests_once_through_a_link_cut_mid_batch(
    servers: Servers, links: dict[str, FaultyLink], embedded_tmp_path: Path, through: str
) -> None:
    db = servers.database_url
    nc = await bus.connect(nats_servers(servers.nats_url), "provisioner")
    await ensure_streams(nc.jetstream(), [CALLS])
    assert await publish_backlog(nc.jetstream(), [str(uuid.uuid4()) for _ in range(10)], RECORDS,
                                 days=3, seed=11) == RECORDS
    await nc.close()
    # batches of 50: each partition's reader has two pull requests in flight, 8 x 2 x 50 = 800
    # records at most delivered ahead of what is applied. With 200 (3,200 of the 5,000 delivered
    # at once) the readers still held every remaining record when the count passed 3/5, so the
    # second cut came after all was in (1 of 40 runs at load 12: "nothing was tested")
    env = service_env(servers, PATCHBAY_CONSUMER_BATCH="50", PATCHBAY_CONSUMER_ACK_WAIT_S="3")
    key = {"nats": "PATCHBAY_NATS_URL", "postgres": "PATCHBAY_DATABASE_URL"}[through]
    env[key] = links[through].url(env[key])
    records = "SELECT count(*) FROM reporting.call_records"
    watch = await asyncpg.connect(db)  # polled every 10 ms: one kept connection, not one per poll
    reporting = ServiceProcess("reporting", env, embedded_tmp_path / "reporting.log")
    reporting.start()

    async def ingested() -> int:
        try:
            return int(await watch.fetchval(records) or 0)
        except asyncpg.UndefinedTableError:  # the service has not made its tables yet
            return 0

    try:
        at_cut = []
        link = links[through]
        for share in (1, 3):  # cut while batches are being applied, over a link in use again
            await wait_for(lambda: link.open, timeout=30, message="the service to connect again")
            # cut as soon as the share is in: the service catches up fast once reconnected
            await wait_for(lambda n=share: _at_least(ingested(), RECORDS * n // 5), timeout=60,
                           interval=0.01, message=f"{share}/5 of the records ingested")
            assert link.cut() >= 1
            at_cut.append(await ingested())
        print("records in at the cuts:", at_cut)
        assert at_cut[-1] < RECORDS, f"all {at_cut[-1]} in before the last cut: nothing was tested"
        try:
            await wait_for(lambda: counted_at_least(db, records, RECORDS), timeout=90, interval=0.2,
                           message="every record ingested")
        except AssertionError:  # what the durables say: idle and acked (lost) or stuck (pending)
            print(await consumer_states(servers.nats_url), "count", await count(db, records),
                  "link open", link.open, "connections", link.connections)
            # the call-record readers' story (the log's tail is mostly the other durables' restarts)
            lines = reporting.log_path.read_text(errors="replace").splitlines()
            print("--- summaries-calls in the reporting log ---\n" + "\n".join(
                [ln for ln in lines if "summaries-calls" in ln or '"level": "error"' in ln][-80:]))
            raise
        await wait_caught_up(servers.nats_url, CALLS.name,
                             [f"reporting-summaries-calls-p{p}" for p in range(PARTITIONS)])
        assert await count(db, records) == RECORDS
        assert await count(db, "SELECT sum(attempts) FROM reporting.call_hours") == RECORDS  # none twice
        assert reporting.starts == 1 and reporting.proc is not None and reporting.proc.poll() is None
        assert await asyncio.to_thread(reporting.ready), reporting.tail()
    finally:
        await watch.close()
        await asyncio.to_thread(reporting.stop)
        print(f"--- reporting log ---\n{reporting.tail(40)}")


async def test_an_ack_all_reader_loses_nothing_a_cut_dropped_in_flight(servers: Servers) -> None:
    """After each cut the reader goes on within seconds, and loses nothing the cut dropped.

    Before, it waited out its lost pull requests (7 s); and with AckPolicy.ALL, acking a batch
    read after the cut would acknowledge messages dropped on the way (a 30 s ack wait: no
    redelivery in time to hide them).
    """
    name = f"CUT{uuid.uuid4().hex[:8]}".upper()
    total = 3_000
    link = await link_to(servers.nats_url, 0.02)  # chunks queue in the proxy: a cut drops them
    direct = await bus.connect(nats_servers(servers.nats_url), "provisioner")
    nc = await bus.connect(link.url(servers.nats_url), "provisioner", max_reconnect_attempts=-1,
                           reconnect_time_wait=0.1)
    seen: set[int] = set()

    async def handler(msgs: Sequence[Msg]) -> None:
        await asyncio.sleep(0.005)  # a write: more deliveries arrive meanwhile
        seen.update(stream_seq(m) for m in msgs)

    spec = ConsumerSpec(name, f"reader-{name.lower()}", [f"{name.lower()}.>"], ack_wait_s=30.0, ack_all=True)
    consumer = PromptConsumer(nc.jetstream(), spec, handler, batch=100, fetch_timeout_s=0.2, ordered=True)
    task: asyncio.Task[None] | None = None
    try:
        await ensure_streams(direct.jetstream(), [StreamSpec(name, [f"{name.lower()}.>"])])
        for n in range(total):
            await direct.publish(f"{name.lower()}.{n % 7}", b"x" * 200)
        await direct.flush()
        task = asyncio.create_task(consumer.run())
        await wait_for(lambda: len(seen) >= total // 5, timeout=30, interval=0.005, message="1/5 read")
        for _ in range(2):
            await wait_for(lambda: link.open, timeout=10, message="the reader to connect again")
            before = len(seen)
            assert link.cut() >= 1
            # reading goes on within seconds (a request lost with the link must not wait out its expiry)
            await wait_for(lambda b=before: len(seen) >= min(total, b + total // 5), timeout=5,
                           interval=0.01, message="reading to go on after the cut")
        await wait_for(lambda: len(seen) == total, timeout=10, interval=0.05,
                       message=f"only {len(seen)} of {total} read")
    finally:
        if task is not None:
            await cancel_tasks([task])
        await nc.close()
        with contextlib.suppress(Exception):
            await direct.jetstream().delete_stream(name)
        await direct.close()
        await link.close()


async def consumer_states(nats_url: str) -> list[str]:
    """Each CALLS partition durable: delivered, ack floor, pending, waiting requests (a failure's clue)."""
    nc = await bus.connect(nats_servers(nats_url), "provisioner")
    try:
        states = []
        for p in range(PARTITIONS):
            i = await nc.jetstream().consumer_info(CALLS.name, f"reporting-summaries-calls-p{p}")
            states.append(f"p{p}: delivered {i.delivered.stream_seq} acked {i.ack_floor.stream_seq}"
                          f" pending {i.num_pending} ack_pending {i.num_ack_pending} waiting {i.num_waiting}")
        return states
    finally:
        await nc.close()


async def _at_least(value: Awaitable[int], n: int) -> bool:
    return await value >= n


async def counted_at_least(db: str, sql: str, n: int) -> bool:
    """At least n, by one count query."""
    return await count(db, sql) >= n
