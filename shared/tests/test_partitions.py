"""Customer partitions: filter algebra, and replicas sharing a real stream in order and completely."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from shared.consumer import ConsumerSpec, JetStreamConsumer, ensure_consumer
from shared.partitioned_consumer import PartitionedConsumer
from shared.partitions import (
    PARTITIONS,
    PartitionKey,
    owned_partitions,
    partition_filters,
    published_subject,
    stored_filters,
)
from shared.runtime import cancel_tasks
from shared.settings import CommonSettings
from shared.streams import CALLS, CUSTOMER_EVENTS, NOTIFY, StreamSpec, ensure_streams

KEY = PartitionKey("events.customer.*.*", 1)


def test_transform_appends_the_partition_of_the_customer_token() -> None:
    t = KEY.transform()
    assert t.src == "events.customer.*.*"
    assert t.dest == "events.customer.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(8,1)}}"
    assert PartitionKey("calls.*.*", 2).transform().dest.endswith("{{partition(8,2)}}")
    with pytest.raises(ValueError, match="no wildcard number 3"):
        PartitionKey("calls.*.*", 3).transform()


def test_partition_filters_split_the_shape_and_give_the_rest_to_partition_zero() -> None:
    filters = ["events.customer.*.*", "events.settings.>"]
    assert partition_filters(filters, KEY, 3) == ["events.customer.*.*.3"]
    # partition 0 also reads the subjects outside the partitioned shape
    assert partition_filters(filters, KEY, 0) == ["events.customer.*.*.0", "events.settings.>"]
    assert partition_filters(["events.customer.*.Created"], KEY, 5) == ["events.customer.*.Created.5"]
    with pytest.raises(ValueError, match="straddles"):
        partition_filters(["events.>"], KEY, 1)
    assert partition_filters(["events.>"], None, 0) == ["events.>"]
    assert partition_filters(["events.>"], None, 1) == []


def test_stored_filters_read_every_partition_at_once() -> None:
    assert stored_filters(["calls.*.*"], CALLS.partition_key) == ["calls.*.>"]
    assert stored_filters(["events.customer.*.Created"], KEY) == [
        "events.customer.*.Created", "events.customer.*.Created.*"]
    assert stored_filters(["dlq.>"], None) == ["dlq.>"]


def test_the_published_subject_is_the_stored_one_without_its_token() -> None:
    assert published_subject("calls.cdr.c1.6", CALLS.partition_key) == "calls.cdr.c1"
    assert published_subject("events.customer.c1.Created.0", KEY) == "events.customer.c1.Created"
    assert published_subject("events.settings.global.Changed", KEY) == "events.settings.global.Changed"
    assert published_subject("calls.cdr.c1", CALLS.partition_key) == "calls.cdr.c1"  # stored before


def test_replicas_own_disjoint_partitions_covering_all() -> None:
    for count in range(1, PARTITIONS + 1):
        owned = [owned_partitions(i, count) for i in range(count)]
        flat = sorted(p for part in owned for p in part)
        assert flat == list(range(PARTITIONS)), count
    with pytest.raises(ValueError, match="replica index"):
        owned_partitions(2, 2)
    with pytest.raises(ValueError, match="replica count"):
        owned_partitions(0, PARTITIONS + 1)
    assert CommonSettings(replica_index=1, replica_count=2).partitions == [1, 3, 5, 7]
    with pytest.raises(ValueError, match="replica index"):
        CommonSettings(replica_index=3, replica_count=2)


def test_declared_streams_partition_on_the_customer_token() -> None:
    transform = CUSTOMER_EVENTS.config().subject_transform
    assert transform is not None and transform.dest.endswith("{{partition(8,2)}}")  # the stream id
    assert NOTIFY.partition_key == PartitionKey("notify.*.*.*", 3)


async def test_two_replicas_share_a_stream_each_customer_in_order_nothing_missed(nats: NatsClient) -> None:
    js = nats.jetstream()
    tag = uuid.uuid4().hex[:8]
    name = f"P{tag}".upper()
    key = PartitionKey(f"{tag}.c.*.*", 1)
    await ensure_streams(js, [StreamSpec(name, [f"{tag}.c.>", f"{tag}.s.>"], partition_key=key)])
    customers = [f"cust{n}" for n in range(40)]
    for step in range(5):
        for c in customers:
            await js.publish(f"{tag}.c.{c}.Step", f"{c}:{step}".encode())
    await js.publish(f"{tag}.s.global.Changed", b"settings:0")
    expected = len(customers) * 5 + 1

    seen: dict[str, list[int]] = defaultdict(list)
    by_replica: dict[int, set[str]] = defaultdict(set)

    def handler_of(replica: int) -> Callable[[Sequence[Msg]], Awaitable[None]]:
        async def handle(msgs: Sequence[Msg]) -> None:
            for msg in msgs:
                who, step = msg.data.decode().split(":")
                seen[who].append(int(step))
                by_replica[replica].add(who)
        return handle

    spec = ConsumerSpec(name, f"d{tag}", [f"{tag}.c.*.*", f"{tag}.s.>"])
    replicas = [
        PartitionedConsumer(js, spec, handler_of(i), owned_partitions(i, 2), key=key, batch=7,
                            fetch_timeout_s=0.2)
        for i in range(2)
    ]
    assert [len(r.consumers) for r in replicas] == [4, 4]
    tasks = [asyncio.create_task(r.run()) for r in replicas]
    try:
        await wait_for(lambda: sum(r.handled for r in replicas) >= expected, timeout=30,
                       message="both replicas to handle every message")
    finally:
        await cancel_tasks(tasks)
    assert sum(len(v) for v in seen.values()) == expected  # nothing twice, nothing missed
    assert all(seen[c] == [0, 1, 2, 3, 4] for c in customers)  # each customer in order
    assert seen["settings"] == [0]  # outside the partitioned shape: partition 0
    assert by_replica[0] and by_replica[1] and not (by_replica[0] & by_replica[1])  # shared, disjoint


async def test_an_ordered_consumer_retries_in_place_and_takes_back_what_a_dead_reader_held(
    nats: NatsClient,
) -> None:
    js = nats.jetstream()
    tag = uuid.uuid4().hex[:8]
    name = f"O{tag}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{tag}.>"])])
    spec = ConsumerSpec(name, f"d{tag}", [f"{tag}.>"], backoff_s=[0.05], ack_wait_s=30.0)
    for n in range(30):
        await js.publish(f"{tag}.c", str(n).encode())

    # a reader that takes the first ten and dies without acknowledging them
    await ensure_consumer(js, spec)
    dead = await js.pull_subscribe_bind(spec.durable, stream=name)
    held = await dead.fetch(10, timeout=5)
    assert len(held) == 10
    await dead.unsubscribe()

    seen: list[int] = []
    failures = {"left": 2}

    async def handle(msgs: Sequence[Msg]) -> None:
        values = [int(m.data) for m in msgs]
        if 15 in values and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database away for a moment")
        seen.extend(values)

    consumer = JetStreamConsumer(js, spec, handle, batch=4, fetch_timeout_s=0.2, ordered=True)
    task = asyncio.create_task(consumer.run())
    try:
        # well within the 30 s ack wait: the held messages come back at once, first
        await wait_for(lambda: len(seen) >= 30, timeout=10, message="every message, in order")
    finally:
        await cancel_tasks([task])
    assert seen == list(range(30)), seen  # in order, though 15 failed twice and 0-9 were held


@dataclass
class Steps:
    """A stream keyed by customer (24 of them) carrying `<customer>:<step>`, and who read what."""

    js: JetStreamContext
    key: PartitionKey
    spec: ConsumerSpec
    tag: str
    customers: list[str] = field(default_factory=lambda: [f"c{n}" for n in range(24)])
    seen: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # customer -> steps
    read: dict[tuple[int, int], set[int]] = field(  # (reader, step) -> partitions
        default_factory=lambda: defaultdict(set))

    @classmethod
    async def create(cls, js: JetStreamContext, letter: str) -> Steps:
        tag = uuid.uuid4().hex[:8]
        key = PartitionKey(f"{tag}.c.*.*", 1)
        name = f"{letter}{tag}".upper()
        await ensure_streams(js, [StreamSpec(name, [f"{tag}.c.>"], partition_key=key)])
        return cls(js, key, ConsumerSpec(name, f"d{tag}", [f"{tag}.c.*.*"]), tag)

    async def publish(self, step: int) -> None:
        for c in self.customers:
            await self.js.publish(f"{self.tag}.c.{c}.Step", f"{c}:{step}".encode())

    def handler(self, reader: int) -> Callable[[Sequence[Msg]], Awaitable[None]]:
        async def handle(msgs: Sequence[Msg]) -> None:
            for msg in msgs:
                customer, step = msg.data.decode().split(":")
                self.seen[customer].append(int(step))
                self.read[(reader, int(step))].add(int(msg.subject.rsplit(".", 1)[1]))
        return handle

    def all_at(self, step: int) -> Callable[[], bool]:
        return lambda: all(len(self.seen[c]) == step + 1 for c in self.customers)


async def test_two_processes_with_the_same_partitions_one_reads_the_other_stands_by(
    nats: NatsClient, make_database: Any,
) -> None:
    dsn = await make_database()
    steps = await Steps.create(nats.jetstream(), "L")
    # both left at the default (replica 0 of 1): both own every partition
    first, second = (PartitionedConsumer(steps.js, steps.spec, steps.handler(i), owned_partitions(0, 1),
                                         key=steps.key, lease_dsn=dsn, batch=5, fetch_timeout_s=0.2)
                     for i in range(2))
    one = asyncio.create_task(first.run())
    await wait_for(lambda: all(c.leases and c.leases.holds(c.lease) for c in first.consumers), timeout=10,
                   message="the first process to lease every partition")
    two = asyncio.create_task(second.run())
    await steps.publish(0)
    await steps.publish(1)
    await wait_for(lambda: first.handled == 2 * len(steps.customers), timeout=10, message="the first to read")
    assert second.handled == 0  # a standby reads nothing
    await cancel_tasks([one])  # the first process goes away; its session, and so its leases, with it
    await steps.publish(2)
    try:
        await wait_for(steps.all_at(2), timeout=20, message="the standby to take over")
    finally:
        await cancel_tasks([two])
    assert all(steps.seen[c] == [0, 1, 2] for c in steps.customers), dict(steps.seen)
    assert steps.read[(1, 2)] and (1, 0) not in steps.read and (1, 1) not in steps.read


async def test_a_replica_stands_in_for_one_that_is_down_and_hands_back_when_it_returns(
    nats: NatsClient, make_database: Any,
) -> None:
    dsn = await make_database()
    steps = await Steps.create(nats.jetstream(), "F")
    read = steps.read

    def replica(i: int) -> PartitionedConsumer:
        return PartitionedConsumer(steps.js, steps.spec, steps.handler(i), owned_partitions(i, 2), key=steps.key,
                                   lease_dsn=dsn, failover_after_s=0.5, batch=5, fetch_timeout_s=0.2)

    def leading(r: PartitionedConsumer) -> set[int]:
        return {int(c.spec.durable.rsplit("-p", 1)[1]) for c in r.consumers if r.leases and r.leases.holds(c.lease)}

    even, odd = replica(0), replica(1)
    tasks = [asyncio.create_task(even.run()), asyncio.create_task(odd.run())]
    try:
        await wait_for(lambda: leading(even) == {0, 2, 4, 6} and leading(odd) == {1, 3, 5, 7}, timeout=10,
                       message="each replica to lease its own partitions")
        await steps.publish(0)
        await wait_for(steps.all_at(0), timeout=10, message="step 0 read")
        assert read[(0, 0)] <= {0, 2, 4, 6} and read[(1, 0)] <= {1, 3, 5, 7}  # a replica up: no stand-in

        await cancel_tasks([tasks.pop()])  # replica 1 goes away, its PostgreSQL session with it
        await steps.publish(1)
        await wait_for(steps.all_at(1), timeout=20, message="replica 0 to stand in for replica 1's partitions")
        assert read[(0, 1)] & {1, 3, 5, 7}  # replica 0 read the odd partitions too
        assert (1, 1) not in read

        back = replica(1)
        tasks.append(asyncio.create_task(back.run()))
        await wait_for(lambda: leading(back) == {1, 3, 5, 7} and leading(even) == {0, 2, 4, 6}, timeout=20,
                       message="replica 0 to hand the odd partitions back")
        await steps.publish(2)
        await wait_for(steps.all_at(2), timeout=10, message="step 2 read")
        assert read[(0, 2)] <= {0, 2, 4, 6} and read[(1, 2)] <= {1, 3, 5, 7}
    finally:
        await cancel_tasks(tasks)
    assert all(steps.seen[c] == [0, 1, 2] for c in steps.customers), dict(steps.seen)  # once each, in order
