"""The partition token before the key (ADR 0026): filters, and switching a live stream to it."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, SubjectTransform
from nats.js.errors import NotFoundError
from shared.consumer import ConsumerSpec, JetStreamConsumer
from shared.partition_layout import FROM, UNTIL, Layout, layout_of, stream_layout
from shared.partitioned_consumer import PartitionedConsumer
from shared.partitions import (
    PartitionKey,
    partition_filters,
    published_subject,
    stored_filters,
    stored_partition,
)
from shared.runtime import cancel_tasks
from shared.streams import CALLS, StreamSpec, ensure_streams

KEY = CALLS.partition_key
assert KEY is not None


def test_calls_store_the_partition_before_the_customer() -> None:
    assert KEY.before and KEY.index == 2
    assert KEY.transform().dest == "calls.{{wildcard(1)}}.{{partition(8,2)}}.{{wildcard(2)}}"
    assert partition_filters(["calls.*.*"], KEY, 3) == ["calls.*.3.*"]
    assert partition_filters(["calls.cdr.*"], KEY, 5) == ["calls.cdr.5.*"]
    # the older layout's filters, read too while a switched stream still holds such messages
    assert partition_filters(["calls.cdr.*"], KEY.last(), 5) == ["calls.cdr.*.5"]
    # a rebuild reads every layout (and messages stored before there were partitions) at once
    assert stored_filters(["calls.*.*"], KEY) == ["calls.*.>"]
    assert stored_filters(["calls.cdr.*"], KEY) == ["calls.cdr.>"]
    events = PartitionKey("events.customer.*.*", 1, before=True)
    assert stored_filters(["events.customer.*.Created"], events) == [
        "events.customer.*.Created", "events.customer.*.Created.*", "events.customer.*.*.Created"]


@pytest.mark.parametrize(("stored", "published", "partition"), [
    ("calls.cdr.3.c1", "calls.cdr.c1", 3),  # token before the customer
    ("calls.cdr.c1.6", "calls.cdr.c1", 6),  # the older layout: token last
    ("calls.cdr.c1", "calls.cdr.c1", None),  # stored before the stream had partitions
    ("calls.started.9.c1", "calls.started.9.c1", None),  # no partition 9: not a token
])
def test_a_stored_subject_in_either_layout_gives_its_published_subject_and_partition(
    stored: str, published: str, partition: int | None,
) -> None:
    assert published_subject(stored, KEY) == published
    assert stored_partition(stored, KEY) == partition


def test_the_layout_is_read_from_the_stream_config() -> None:
    last = PartitionKey("x.*.*", 2)
    assert layout_of(StreamConfig(name="X", subject_transform=last.transform())) == Layout(False)
    assert layout_of(StreamConfig(name="X")) == Layout(False)
    cfg = StreamConfig(name="X", subject_transform=replace(last, before=True).transform(),
                       metadata={FROM: "41", UNTIL: "40"})
    assert layout_of(cfg) == Layout(True, 41, 40)
    # a transform without a partition token is no layout of ours
    assert layout_of(StreamConfig(name="X", subject_transform=SubjectTransform(src="a.*", dest="b.{{wildcard(1)}}"))
                     ) == Layout(False)


class Counting(JetStreamConsumer):
    """Counts the fetches that came back empty."""

    async def idle(self) -> None:
        self.idles = getattr(self, "idles", 0) + 1
        await super().idle()


class Calls:
    """A CALLS-like stream of `<customer>:<step>` records for 24 customers, and who read what."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.tag = uuid.uuid4().hex[:8]
        self.name = f"Y{self.tag}".upper()
        self.last = PartitionKey(f"{self.tag}.*.*", 2)
        self.before = replace(self.last, before=True)
        self.spec = ConsumerSpec(self.name, f"d{self.tag}", [f"{self.tag}.*.*"], ack_all=True)
        self.customers = [str(uuid.uuid4()) for _ in range(24)]
        self.seen: dict[str, list[int]] = defaultdict(list)

    async def stream(self, key: PartitionKey) -> None:
        await ensure_streams(self.js, [StreamSpec(self.name, [f"{self.tag}.cdr.*"], partition_key=key)])

    async def publish(self, step: int) -> int:
        for c in self.customers:
            await self.js.publish(f"{self.tag}.cdr.{c}", f"{c}:{step}".encode())
        return int((await self.js.stream_info(self.name)).state.last_seq)

    def consumer(self, key: PartitionKey, owned: list[int], cls: type[JetStreamConsumer] = JetStreamConsumer,
                 ) -> PartitionedConsumer:
        return PartitionedConsumer(self.js, self.spec, self.handler(), owned, key=key, consumer_cls=cls,
                                   batch=5, fetch_timeout_s=0.2)

    def handler(self) -> Callable[[Sequence[Msg]], Awaitable[None]]:
        async def handle(msgs: Sequence[Msg]) -> None:
            for msg in msgs:
                customer, step = msg.data.decode().split(":")
                self.seen[customer].append(int(step))
        return handle

    def at(self, step: int, customers: list[str] | None = None) -> Callable[[], bool]:
        return lambda: all(len(self.seen[c]) == step + 1 for c in customers or self.customers)

    async def filters(self, partition: int) -> list[str]:
        cfg = (await self.js.consumer_info(self.name, f"{self.spec.durable}-p{partition}")).config
        return cfg.filter_subjects or [cfg.filter_subject or ""]

    def narrowed(self, partitions: range) -> Callable[[], Awaitable[bool]]:
        """Whether these partitions' durables read the new shape alone (False while one is re-created)."""
        async def check() -> bool:
            try:
                return [await self.filters(p) for p in partitions] == [[f"{self.tag}.*.{p}.*"] for p in partitions]
            except NotFoundError:  # between the delete and the add of a durable re-created at a sequence
                return False
        return check


async def test_switching_a_stream_loses_and_doubles_nothing_with_a_previous_release_still_reading(
    nats: NatsClient,
) -> None:
    calls = Calls(nats.jetstream())
    await calls.stream(calls.last)
    # the previous release: the token last, no idea of the switch
    old_even = calls.consumer(calls.last, [0, 2, 4, 6])
    old_odd = calls.consumer(calls.last, [1, 3, 5, 7], Counting)
    tasks = [asyncio.create_task(old_even.run()), asyncio.create_task(old_odd.run())]
    try:
        await calls.publish(0)
        # handled counts a batch once acknowledged: nothing of step 0 comes again after the stop
        await wait_for(lambda: old_even.handled + old_odd.handled == len(calls.customers), timeout=20,
                       message="step 0 read (and acknowledged) in the older layout")
        await cancel_tasks([tasks.pop(0)])  # the even partitions stop; step 1 waits for them
        await calls.publish(1)
        await calls.stream(calls.before)  # the provisioner of the new release switches the stream
        layout = await stream_layout(calls.js, calls.name)
        assert layout.before and layout.first_new == layout.last_old + 1
        last_old = layout.last_old
        idles = [getattr(c, "idles", 0) for c in old_odd.consumers]
        await calls.publish(2)  # stored in the new layout, which the old odd readers do not match
        # each old reader asked again after step 2 was stored: the server passed those messages by
        await wait_for(lambda: all(getattr(c, "idles", 0) > i + 1 for c, i in zip(old_odd.consumers, idles,
                                                                                   strict=True)),
                       timeout=10, message="the old readers to pull past the new-shape messages")
    finally:
        await cancel_tasks(tasks)
    info = await calls.js.stream_info(calls.name)
    stored = (await calls.js.get_msg(calls.name, info.state.last_seq)).subject
    assert stored_partition(stored, calls.before) is not None and stored.split(".")[2].isdigit()

    new = calls.consumer(calls.before, list(range(8)))
    task = asyncio.create_task(new.run())
    try:
        await wait_for(calls.at(2), timeout=30, message="steps 1 and 2 read by the new release")
        # past the older messages, each durable reads the new shape alone (JetStream's fast path)
        await wait_for(calls.narrowed(range(8)), timeout=20, message="every durable narrowed to the new shape")
        assert last_old < (await calls.publish(3))
        await wait_for(calls.at(3), timeout=20, message="step 3 read through the narrowed durables")
    finally:
        await cancel_tasks([task])
    assert all(calls.seen[c] == [0, 1, 2, 3] for c in calls.customers), dict(calls.seen)  # once each, in order


async def test_a_new_release_reading_the_older_layout_follows_the_switch_while_it_runs(nats: NatsClient) -> None:
    calls = Calls(nats.jetstream())
    await calls.stream(calls.last)
    reader = calls.consumer(calls.before, list(range(8)))
    task = asyncio.create_task(reader.run())
    try:
        await calls.publish(0)
        await wait_for(calls.at(0), timeout=20, message="step 0 read in the older layout")
        assert await calls.filters(3) == [f"{calls.tag}.*.*.3"]  # not switched: the older filter
        await calls.stream(calls.before)
        await calls.publish(1)
        await calls.publish(2)
        # the readers find the switch while idle (every few seconds), start again from before it
        await wait_for(calls.at(2), timeout=30, message="steps 1 and 2 read after the switch")
        # a partition with no customer narrows when it finds, idle, nothing older ahead (LAG_EVERY_S)
        await wait_for(calls.narrowed(range(3, 4)), timeout=20, message="partition 3 narrowed")
    finally:
        await cancel_tasks([task])
    assert all(calls.seen[c] == [0, 1, 2] for c in calls.customers), dict(calls.seen)


async def test_a_switch_stopped_half_way_is_finished_by_the_next_provisioning(nats: NatsClient) -> None:
    calls = Calls(nats.jetstream())
    await calls.stream(calls.last)
    await calls.publish(0)
    # as a provisioner leaves it when it dies between its two updates: the end of the older shape unknown
    spec = StreamSpec(calls.name, [f"{calls.tag}.cdr.*"], partition_key=calls.before)
    await calls.js.update_stream(replace(spec.config(), metadata={FROM: "25", UNTIL: str(2**63 - 1)}))
    last = await calls.publish(1)
    await calls.stream(calls.before)
    assert await stream_layout(calls.js, calls.name) == Layout(True, 25, last)  # every message so far may be old
