"""The consumer base against a real nats-server: retries, dead letters, no stall."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence

from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy
from shared.consumer import ConsumerSpec, JetStreamConsumer, Poison
from shared.runtime import cancel_tasks
from shared.streams import DEAD_LETTERS, OPS_EVENTS, StreamSpec, ensure_streams


async def test_poison_is_dead_lettered_transient_is_retried_and_the_rest_go_on(nats: NatsClient) -> None:
    js = nats.jetstream()
    name = f"T{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"]), DEAD_LETTERS, OPS_EVENTS])
    seen: list[int] = []
    flaky_failures = {"left": 2}

    async def handler(msgs: Sequence[Msg]) -> None:
        values = []
        for msg in msgs:
            body = json.loads(msg.data)  # bad JSON raises ValueError: poison
            if body.get("poison"):
                raise Poison("this one can never work")
            if body.get("flaky") and flaky_failures["left"] > 0:
                flaky_failures["left"] -= 1
                raise ConnectionError("database away for a moment")
            values.append(body["n"])
        seen.extend(values)

    spec = ConsumerSpec(name, f"durable-{name.lower()}", [f"{name.lower()}.>"],
                        max_deliver=4, backoff_s=[0.05])
    consumer = JetStreamConsumer(js, spec, handler, batch=50, fetch_timeout_s=0.2)
    for n in range(10):
        await js.publish(f"{name.lower()}.a", json.dumps({"n": n}).encode())
    await js.publish(f"{name.lower()}.a", b"{not json")
    await js.publish(f"{name.lower()}.a", json.dumps({"poison": True}).encode())
    await js.publish(f"{name.lower()}.a", json.dumps({"n": 10, "flaky": True}).encode())
    for n in range(11, 20):
        await js.publish(f"{name.lower()}.a", json.dumps({"n": n}).encode())

    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: sorted(seen) == list(range(20)), timeout=15,
                       message=f"not every good message was handled: {sorted(seen)}")
        await wait_for(lambda: consumer.dead_lettered == 2, timeout=5)
        dlq = await js.pull_subscribe(f"dlq.{spec.durable}", durable=None, stream="DEAD_LETTERS")
        parked = await dlq.fetch(2, timeout=5)
        assert sorted(m.data for m in parked) == sorted([b"{not json", b'{"poison": true}'])
        assert all(m.headers and m.headers["Patchbay-Consumer"] == spec.durable for m in parked)
        # and each is announced by an error event naming the consumer, the origin and the error
        events = await js.pull_subscribe(f"events.ops.{spec.durable}.MessageDeadLettered", durable=None,
                                         stream=OPS_EVENTS.name)
        announced = [json.loads(m.data) for m in await events.fetch(2, timeout=5)]
        assert sorted(e["data"]["sequence"] for e in announced) == sorted(
            int(m.headers["Patchbay-Original-Sequence"]) for m in parked if m.headers)
        assert all(e["data"]["consumer"] == spec.durable and e["data"]["error"] for e in announced)
        assert any("can never work" in e["data"]["error"] for e in announced)

        async def settled() -> bool:
            info = await js.consumer_info(name, spec.durable)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_for(settled, timeout=5, message="messages left unacknowledged")
    finally:
        await cancel_tasks([task])


async def test_an_idle_consumer_never_hands_its_handler_an_empty_batch(nats: NatsClient) -> None:
    """nats-py's fetch() answers [] when the server's 408 ends a lingering pull just before the
    client's timeout (an idle stream does that every fetch): no handler call for it."""
    js = nats.jetstream()
    name = f"E{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"]), DEAD_LETTERS, OPS_EVENTS])
    batches: list[int] = []

    async def handler(msgs: Sequence[Msg]) -> None:
        batches.append(len(msgs))

    spec = ConsumerSpec(name, f"durable-{name.lower()}", [f"{name.lower()}.>"])
    consumer = JetStreamConsumer(js, spec, handler, batch=50, fetch_timeout_s=0.05)
    idle_rounds = {"n": 0}
    idle = consumer.idle

    async def counted_idle() -> None:
        idle_rounds["n"] += 1
        await idle()

    consumer.idle = counted_idle  # type: ignore[method-assign]
    task = asyncio.create_task(consumer.run())
    try:
        # many idle fetches first (each a chance for the empty answer), then one message
        await wait_for(lambda: idle_rounds["n"] + len(batches) >= 40, timeout=20,
                       message="the consumer did not poll")
        await js.publish(f"{name.lower()}.a", b"{}")
        await wait_for(lambda: sum(batches) == 1, timeout=10, message=f"message not handled: {batches}")
        assert 0 not in batches, f"handler called with an empty batch: {batches}"
        await consumer.process([])  # the same guard wherever a batch comes from
        assert batches == [1]
    finally:
        await cancel_tasks([task])


async def test_an_ack_all_partition_acks_each_batch_once_and_nothing_comes_again(nats: NatsClient) -> None:
    """ack_all: one ack per batch; a poison message is still dead-lettered alone, a flaky one
    retried in place, and nothing is delivered again after the ack wait (all were acked)."""
    js = nats.jetstream()
    name = f"A{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"]), DEAD_LETTERS, OPS_EVENTS])
    seen: list[int] = []
    flaky = {"left": 1}

    async def handler(msgs: Sequence[Msg]) -> None:
        values = []
        for msg in msgs:
            body = json.loads(msg.data)
            if body.get("poison"):
                raise Poison("never")
            if body.get("flaky") and flaky["left"] > 0:
                flaky["left"] -= 1
                raise ConnectionError("away for a moment")
            values.append(body["n"])
        seen.extend(values)

    spec = ConsumerSpec(name, f"durable-{name.lower()}", [f"{name.lower()}.>"], ack_wait_s=1.0,
                        backoff_s=[0.05], ack_all=True)
    for n in range(300):
        await js.publish(f"{name.lower()}.a", json.dumps({"n": n} | ({"flaky": True} if n == 150 else {})).encode())
        if n == 100:
            await js.publish(f"{name.lower()}.a", json.dumps({"poison": True}).encode())
    consumer = JetStreamConsumer(js, spec, handler, batch=40, fetch_timeout_s=0.2, ordered=True)
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: sorted(seen) == list(range(300)), timeout=20,
                       message=f"not every message handled: {len(seen)}")
        assert seen == list(range(300)), "out of order"
        await wait_for(lambda: consumer.dead_lettered == 1, timeout=5)
        info = await js.consumer_info(name, spec.durable)
        assert info.config.ack_policy == AckPolicy.ALL
        await asyncio.sleep(2.5)  # past the ack wait: anything left unacknowledged would be back
        info = await js.consumer_info(name, spec.durable)
        assert info.num_ack_pending == 0 and info.num_pending == 0 and info.num_redelivered == 0, info
        assert len(seen) == 300, "a message was handled twice"
    finally:
        await cancel_tasks([task])
