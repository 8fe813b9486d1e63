"""Reading a stream's history fast: an ephemeral pull consumer, no acks, large batches."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def pending_count(js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int) -> int:
    """How many messages of these subjects the stream holds from start_seq on."""
    sub = await _subscribe(js, stream, subjects, start_seq)
    try:
        info = await sub.consumer_info()
        return int(info.num_pending or 0)
    finally:
        await _close(js, sub)


async def _close(js: JetStreamContext, sub: JetStreamContext.PullSubscription) -> None:
    """Unsubscribe and delete the ephemeral consumer now (not after its inactivity threshold)."""
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
    with contextlib.suppress(Exception):
        await js.delete_consumer(sub._stream, sub._consumer)


async def _subscribe(
    js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int
) -> JetStreamContext.PullSubscription:
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(start_seq, 1),
        filter_subjects=list(subjects) if len(subjects) > 1 else None,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    return await js.pull_subscribe(subjects[0], stream=stream, config=config,
                                   pending_msgs_limit=-1, pending_bytes_limit=-1)


async def replay(
    js: JetStreamContext, stream: str, subjects: Sequence[str], *, start_seq: int, until_seq: int,
    batch: int = 5000, idle_timeout_s: float = 1.0,
) -> AsyncIterator[list[Msg]]:
    """Batches of the stream's messages of these subjects with start_seq <= seq <= until_seq."""
    if until_seq < start_seq:
        return
    sub = await _subscribe(js, stream, subjects, start_seq)
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=idle_timeout_s)
            except (TimeoutError, NatsTimeoutError):
                return  # nothing more to read
            if not msgs:
                return
            last = msgs[-1].metadata
            wanted = [m for m in msgs if m.metadata.sequence.stream <= until_seq]
            if wanted:
                yield wanted
            if last.sequence.stream >= until_seq or last.num_pending == 0:
                return
    finally:
        await _close(js, sub)
