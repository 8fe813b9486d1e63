"""Call records into the live/daily/monthly summaries, sustained, beside a raw JetStream fetch.

    uv run python bench/cdr_ingest.py --records 300000 [--replicas 2]

Starts embedded NATS + PostgreSQL (or uses PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL) and the
reporting service as its own process, after this process has published a backlog of call
records: the service then works flat out (durable consumer, batches, one statement per batch
with its checkpoint, acks), and the figure is records per second from its first batch written
to its last. Baselines in the same run: a raw read of
the same stream in Python, by nats-py `fetch()` and by pipelined pull requests.
Target (issue 21): sustained >= 0.8 of the raw pipelined pull in the same run. Also printed: the
CPU microseconds per record of the reporting process, PostgreSQL and nats-server while it ingests,
and per message of each baseline; for comparison only (not the target's baseline), the same
pipelined pull of the service's eight partition filters at the service's batch size, which is what
the service itself must read (docs/performance.md, "CDR ingestion against the pull").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from reporting.settings import ReportingSettings
from reporting.simulator import publish_backlog
from shared.partitions import PARTITIONS, partition_filters
from shared.stream_replay import PullReader
from shared.streams import CALLS, ensure_streams

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))
from _harness import CpuMeter, process, servers
from rebuild import raw_fetch, raw_pull


async def raw_partitions(js: JetStreamContext, batch: int) -> tuple[int, float]:
    """Every partition's filter read at once by pipelined pulls (no acks, nothing else): the service's read."""
    names = [f"bench-part-{p}-{uuid.uuid4().hex[:6]}" for p in range(PARTITIONS)]
    for p, name in enumerate(names):
        await js.add_consumer("CALLS", ConsumerConfig(
            name=name, ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
            filter_subject=partition_filters(["calls.*.*"], CALLS.partition_key, p)[0],
            inactive_threshold=30.0, mem_storage=True))

    async def one(name: str) -> int:
        return sum([len(m) async for m in PullReader(js._nc, "CALLS", name, batch=batch).chunks()])

    t0 = time.perf_counter()
    n = sum(await asyncio.gather(*(one(name) for name in names)))
    elapsed = time.perf_counter() - t0
    for name in names:
        with contextlib.suppress(Exception):
            await js.delete_consumer("CALLS", name)
    return n, elapsed


async def fill(nats_url: str, records: int) -> int:
    """Publish the records before the service starts; return the last stream sequence."""
    nc = await bus.connect(nats_url, "provisioner")
    js = nc.jetstream()
    await ensure_streams(js, [CALLS])
    t0 = time.perf_counter()
    published = await publish_backlog(js, [str(uuid.uuid4()) for _ in range(1000)], records, days=35, seed=11)
    took = time.perf_counter() - t0
    print(f"published {published:,} records in {took:.1f} s ({published / took:,.0f}/s)", file=sys.stderr)
    last = (await js.stream_info("CALLS")).state.last_seq
    await nc.close()
    return int(last)


async def measure(nats_url: str, db_url: str, records: int, meter: CpuMeter) -> None:
    """From the first batch written to the last: the service's sustained rate on a backlog.

    Followed by the partitions' durables (acked = written: each batch is acked after its commit),
    not by polling `count(*)`: that scan of the growing table cost PostgreSQL ~3 µs per record
    of the run and took its CPU from the service. Checked by one count in PostgreSQL at the end.
    """
    nc = await bus.connect(nats_url, "provisioner")
    js = nc.jetstream()
    prefix = ReportingSettings().durable_prefix
    durables = [f"{prefix}-summaries-calls-p{p}" for p in range(PARTITIONS)]

    async def written() -> int:
        """Records acked by the partitions' durables: the stream's records minus those not yet acked."""
        unacked = 0
        for durable in durables:
            try:
                info = await js.consumer_info("CALLS", durable)
            except NotFoundError:
                return 0  # the service has not made all its durables yet
            unacked += (info.num_pending or 0) + (info.num_ack_pending or 0)
        return records - unacked

    while (first := await written()) == 0:
        await asyncio.sleep(0.01)
    meter.start()
    t0 = time.perf_counter()
    while await written() < records:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    cpu = meter.per_op_us(records - first)
    db = await asyncpg.connect(db_url)
    stored = int(await db.fetchval("SELECT count(*) FROM reporting.call_records"))
    await db.close()
    if stored != records:
        raise SystemExit(f"{stored:,} records in PostgreSQL after {records:,} were acked")
    last = records
    rate = (last - first) / elapsed
    base = CpuMeter()
    base.start()
    n, s = await raw_fetch(js, "CALLS", ["calls.>"])
    fetch_rate, fetch_cpu = n / s, base.per_op_us(n)
    base.start()
    n, s = await raw_pull(js, "CALLS", ["calls.>"])
    pull_rate, pull_cpu = n / s, base.per_op_us(n)
    base.start()
    batch = ReportingSettings().consumer_batch
    n, s = await raw_partitions(js, batch)
    part_rate, part_cpu = n / s, base.per_op_us(n)
    print(f"raw fetch() of CALLS (baseline)        {fetch_rate:>9,.0f}/s   {fetch_cpu}")
    print(f"raw pipelined pull of CALLS (baseline) {pull_rate:>9,.0f}/s   {pull_cpu}")
    print(f"  for comparison: the {PARTITIONS} partition filters, batch {batch}: {part_rate:,.0f}/s   {part_cpu}")
    print(f"records into the summaries, sustained  {rate:>9,.0f}/s   ratio {rate / fetch_rate:.2f} of fetch(),"
          f" {rate / pull_rate:.2f} of pull   ({last - first:,} records, {elapsed:.1f} s)"
          f"   [{rate / part_rate:.2f} of the partitions' pull]")
    print(f"while ingesting: {cpu} (client: this process, following the durables)")
    print(f"\nload average {os.getloadavg()[0]:.1f}; target: sustained >= 0.8 of the raw pipelined pull")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--replicas", type=int, default=1,
                        help="reporting processes sharing the customer partitions")
    args = parser.parse_args()
    with servers() as (nats_url, db_url), contextlib.ExitStack() as stack:
        env = {"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url,
               "PATCHBAY_REPLICA_COUNT": str(args.replicas)}
        asyncio.run(fill(nats_url, args.records))
        for index in range(args.replicas):
            stack.enter_context(process([sys.executable, "-m", "reporting"],
                                        env | {"PATCHBAY_REPLICA_INDEX": str(index)}))
        print(f"{args.replicas} reporting replica(s)")
        asyncio.run(measure(nats_url, db_url, args.records, CpuMeter()))


if __name__ == "__main__":
    main()
