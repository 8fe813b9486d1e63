"""Reading a stream's history fast: an ephemeral consumer (no acks) read by a pipelined puller."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from shared.partitions import stored_filters
from shared.streams import partition_key_of

from reporting.projections.pull import PullReader, stream_seq


async def _create(js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int) -> str:
    name = f"replay-{uuid.uuid4().hex[:12]}"
    # every partition at once; no subjects: the whole stream, unfiltered (the fast path)
    subjects = stored_filters(list(subjects), partition_key_of(stream))
    await js.add_consumer(stream, ConsumerConfig(
        name=name,
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(start_seq, 1),
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=list(subjects) if len(subjects) > 1 else None,
        inactive_threshold=60.0,
        mem_storage=True,
    ))
    return name


async def _delete(js: JetStreamContext, stream: str, name: str) -> None:
    with contextlib.suppress(Exception):
        await js.delete_consumer(stream, name)


async def pending_count(js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int) -> int:
    """How many messages of these subjects the stream holds from start_seq on."""
    name = await _create(js, stream, subjects, start_seq)
    try:
        return int((await js.consumer_info(stream, name)).num_pending or 0)
    finally:
        await _delete(js, stream, name)


async def replay(
    js: JetStreamContext, stream: str, subjects: Sequence[str], *, start_seq: int, until_seq: int,
    batch: int = 5000,
) -> AsyncIterator[list[Msg]]:
    """Batches of the stream's messages of these subjects with start_seq <= seq <= until_seq."""
    if until_seq < start_seq:
        return
    name = await _create(js, stream, subjects, start_seq)
    try:
        async for msgs in PullReader(js._nc, stream, name, batch=batch).chunks():
            if stream_seq(msgs[-1]) <= until_seq:
                yield msgs
                continue
            wanted = [m for m in msgs if stream_seq(m) <= until_seq]
            if wanted:
                yield wanted
            return
    finally:
        await _delete(js, stream, name)
