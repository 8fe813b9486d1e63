"""nats-server CPU per message of the partition filters, with the partition token last / first / before the key.

    uv run python bench/partition_layouts.py [--records 30000] [--customers 1000] [--rounds 2]

Three scratch streams hold the same call-record-like messages from `--customers` customers, stored
by a subject transform as `calls.cdr.<customer>.<k>` (token last, ADR 4), `calls.<k>.cdr.<customer>`
(first) and `calls.cdr.<k>.<customer>` (before the customer, ADR 26). Each is read to the end by
pipelined pulls, once through the eight partition filters at once and once through one `calls.>`
(the shape of the CDR ingestion's baseline), and the nats-server's CPU per message is printed
(docs/performance.md, "CDR ingestion, third round").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from devtools.embedded import EmbeddedNats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, SubjectTransform
from shared.partitions import PARTITIONS
from shared.stream_replay import PullReader

from shared import bus

LAYOUTS = {  # name: (transform destination, a partition's filter)
    "last": ("{p}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{partition(8,2)}}}}", "{p}.*.*.{k}"),
    "first": ("{p}.{{{{partition(8,2)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}", "{p}.{k}.*.*"),
    "before": ("{p}.{{{{wildcard(1)}}}}.{{{{partition(8,2)}}}}.{{{{wildcard(2)}}}}", "{p}.*.{k}.*"),
}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fill(js: nats.js.JetStreamContext, records: int, customers: list[str]) -> None:
    """One stream per layout, the same messages in each."""
    body = b'{"call_id": "00000000000000000000000000000000", "duration_s": 60, "charge": "0.0100"}'
    for name, (dest, _) in LAYOUTS.items():
        await js.add_stream(StreamConfig(name=name.upper(), subjects=[f"{name}.started.*", f"{name}.cdr.*"],
                                         subject_transform=SubjectTransform(src=f"{name}.*.*",
                                                                            dest=dest.format(p=name))))
        acks = []
        for i in range(records):
            kind = "started" if i % 5 == 0 else "cdr"
            acks.append(await js.publish_async(f"{name}.{kind}.{customers[i % len(customers)]}", body))
            if len(acks) >= 2000:
                await asyncio.gather(*acks)
                acks = []
        await asyncio.gather(*acks)


async def read(nc: nats.NATS, stream: str, filters: list[str], batch: int) -> int:
    """Every filter's consumer read to the end at once; messages read."""
    js = nc.jetstream()
    names = [f"layout-{uuid.uuid4().hex[:8]}" for _ in filters]
    for name, f in zip(names, filters, strict=True):
        await js.add_consumer(stream, ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, filter_subject=f,
                                                     deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0,
                                                     mem_storage=True))

    async def one(name: str) -> int:
        return sum([len(m) async for m in PullReader(nc, stream, name, batch=batch).chunks()])

    n = sum(await asyncio.gather(*(one(name) for name in names)))
    for name in names:
        await js.delete_consumer(stream, name)
    return n


async def measure(url: str, pid: int, args: argparse.Namespace) -> None:
    nc = await bus.connect(url, "provisioner")
    await fill(nc.jetstream(), args.records, [str(uuid.uuid4()) for _ in range(args.customers)])
    for _ in range(args.rounds):
        for name, (_, flt) in LAYOUTS.items():
            shapes = {"8 partition filters": [flt.format(p=name, k=k) for k in range(PARTITIONS)],
                      "one filter  >": [f"{name}.>"]}
            for label, filters in shapes.items():
                c0, t0 = cpu_s(pid), time.perf_counter()
                n = await read(nc, name.upper(), filters, 2000 if len(filters) > 1 else 5000)
                took, cpu = time.perf_counter() - t0, cpu_s(pid) - c0
                print(f"{name:7s} {label:20s} {n:>7,} msgs {n / took:>9,.0f}/s"
                      f"   nats-server {1e6 * cpu / n:5.1f} µs/msg", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats")
        url = server.start()
        try:
            pid = int((Path(tmp) / "nats" / "nats.pid").read_text())
            asyncio.run(measure(url, pid, args))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
