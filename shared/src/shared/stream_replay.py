"""A stream's history read fast (rebuilds, benchmarks): an ephemeral consumer without acks, pulls pipelined.

Two pull requests of `batch` messages stay outstanding, so the server sends the next batch while
this process handles the one before (nats-py's `fetch()` waits a round trip per batch and awaits
each message with a timeout of its own). The requests do not wait (`no_wait`): the server's
404 says the consumer has nothing more (the reader itself: `shared.pull_reader`). `overlap`
runs a rebuild's decode and its database writes side by side: PostgreSQL writes one batch
while this process decodes the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.partitions import stored_filters
from shared.pull_reader import SILENCE_S, Delivery, PullReader, stream_seq
from shared.streams import partition_key_of

__all__ = [
    "SHORT_READ_BUDGET_S", "SILENCE_S", "Delivery", "PullReader", "ShortRead", "next_stored", "overlap",
    "pending_count", "replay", "stream_seq",
]

T = TypeVar("T")
SHORT_READ_BUDGET_S = 30.0  # a read that ends before a message the stream holds: re-read this long
log = structlog.get_logger(__name__)


class ShortRead(RuntimeError):
    """The consumer kept saying it had nothing more while the stream's leader holds more."""


async def _create(
    js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int, prefix: str,
) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    # every partition at once; no subjects: the whole stream, unfiltered (the fast path)
    filters = stored_filters(list(subjects), partition_key_of(stream))
    await js.add_consumer(stream, ConsumerConfig(
        name=name,
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(start_seq, 1),
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=filters if len(filters) > 1 else None,
        inactive_threshold=60.0,
        mem_storage=True,
    ))
    return name


async def _delete(js: JetStreamContext, stream: str, name: str) -> None:
    with contextlib.suppress(Exception):
        await js.delete_consumer(stream, name)


async def pending_count(
    js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int = 1, *, prefix: str = "replay",
) -> int:
    """How many messages of these subjects (none: every one) the stream holds from start_seq on."""
    name = await _create(js, stream, subjects, start_seq, prefix)
    try:
        return int((await js.consumer_info(stream, name)).num_pending or 0)
    finally:
        await _delete(js, stream, name)


async def next_stored(
    js: JetStreamContext, stream: str, subjects: Sequence[str], seq: int,
) -> int | None:
    """The first sequence >= seq of these subjects (none: any) as the stream's leader holds it; None: none.

    Asked of the leader (not a direct get, which any replica answers), so a replica behind, or a
    consumer's early "no messages", is not taken for the stream's end."""
    found: list[int] = []
    for subject in stored_filters(list(subjects), partition_key_of(stream)) or [">"]:
        with contextlib.suppress(NotFoundError):
            found.append((await js.get_msg(stream, seq=max(seq, 1), subject=subject, next=True)).seq or 0)
    return min(found) if found else None


async def _consumer_view(js: JetStreamContext, stream: str, name: str) -> dict[str, Any]:
    """Where a consumer runs and what it counts (a short read's warning says which replica erred)."""
    try:
        info = await js.consumer_info(stream, name)
    except Exception as exc:  # diagnostics only: the read is retried either way
        return {"error": str(exc) or type(exc).__name__}
    return {"server": info.cluster.leader if info.cluster else None, "num_pending": info.num_pending,
            "delivered": info.delivered.stream_seq if info.delivered else None}


async def replay(
    js: JetStreamContext, stream: str, subjects: Sequence[str], *, start_seq: int, until_seq: int,
    batch: int = 5000, prefix: str = "replay", direct: bool = True,
) -> AsyncIterator[list[Any]]:
    """Batches of the stream's messages of these subjects (none: every one), start_seq <= seq <= until_seq.

    Each message is a `Delivery` (or nats-py's `Msg` where the parser cannot hand them over): its
    subject, reply, data, headers and metadata. `prefix` names the ephemeral consumer (what an
    operator sees in `nats consumer ls`). A read that ends before until_seq is checked with the
    stream's leader: a message left out (e.g. a cluster's server answering the pull requests 503,
    no responders, before the new consumer's interest reached it) is read again from there
    by a fresh consumer for up to SHORT_READ_BUDGET_S, then ShortRead is raised: never a silent gap.
    `direct=False` reads through nats-py's own message path (a baseline for the benches)."""
    if until_seq < start_seq:
        return
    deadline = asyncio.get_running_loop().time() + SHORT_READ_BUDGET_S
    start, attempt = start_seq, 0
    while True:
        name = await _create(js, stream, subjects, start, prefix)
        reader = PullReader(js._nc, stream, name, batch=batch, direct=direct)
        try:
            # aclosing: a return at until_seq, or a stop from outside, unroutes and unsubscribes
            # the reader at once (a request still in flight would fill a buffer nobody reads)
            async with contextlib.aclosing(reader.chunks()) as chunks:
                async for msgs in chunks:
                    last = stream_seq(msgs[-1])
                    if last < until_seq:
                        start = last + 1
                        yield msgs
                        continue
                    if last == until_seq:
                        yield msgs
                    elif wanted := [m for m in msgs if stream_seq(m) <= until_seq]:
                        yield wanted
                    return  # at until_seq: no round trip for the server's 404
            missed = await next_stored(js, stream, subjects, start)
            if missed is None or missed > until_seq:
                return  # the read ended where the stream's messages of these subjects end
            seen = await _consumer_view(js, stream, name)  # before it is deleted: what it said
        finally:
            await _delete(js, stream, name)
        attempt += 1
        log.warning("replay_read_short", stream=stream, subjects=list(subjects), read_to=start - 1,
                    next_stored=missed, until=until_seq, statuses=reader.statuses, consumer=seen,
                    attempt=attempt)
        if asyncio.get_running_loop().time() >= deadline:
            raise ShortRead(f"{stream}: the read ended at {start - 1} but the stream holds {missed} "
                            f"(<= {until_seq}); statuses {reader.statuses}")
        await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))


async def overlap(
    chunks: AsyncIterable[Any], prepare: Callable[[Any], T], write: Callable[[T], Awaitable[None]],
    *, depth: int = 3,
) -> None:
    """`prepare` each chunk here while `write` (another task) takes the ones before, up to `depth` ahead.

    A failed write stops the read and is raised; a failed read cancels the writes."""
    queue: asyncio.Queue[tuple[T] | None] = asyncio.Queue(depth)
    failed: list[BaseException] = []

    async def writer() -> None:
        while (item := await queue.get()) is not None:
            if not failed:  # after a failure: only emptied, so the reader never blocks on a full queue
                try:
                    await write(item[0])
                except Exception as exc:  # raised again below, once the queue is emptied
                    failed.append(exc)
        if failed:
            raise failed[0]

    task = asyncio.create_task(writer())
    try:
        # a stop (a failed write) closes a generator now: the reader's consumer is deleted at once
        closing = (contextlib.aclosing(chunks) if isinstance(chunks, AsyncGenerator)
                   else contextlib.nullcontext())
        async with closing:
            async for chunk in chunks:
                if failed:
                    break
                await queue.put((prepare(chunk),))
        await queue.put(None)
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
