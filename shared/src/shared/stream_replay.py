"""A stream's history read fast (rebuilds, benchmarks): an ephemeral consumer without acks, pulls pipelined.

Two pull requests of `batch` messages stay outstanding, so the server sends the next batch while
this process handles the one before (nats-py's `fetch()` waits a round trip per batch and awaits
each message with a timeout of its own). The requests do not wait (`no_wait`): the server's
404 says the consumer has nothing more. `overlap` runs a rebuild's decode and its database
writes side by side: PostgreSQL writes one batch while this process decodes the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.nats_direct import route, unroute
from shared.partitions import stored_filters
from shared.streams import partition_key_of

T = TypeVar("T")
SILENCE_S = 30.0  # no message nor status for this long: the read fails (never a hang)
SHORT_READ_BUDGET_S = 30.0  # a read that ends before a message the stream holds: re-read this long
log = structlog.get_logger(__name__)


class ShortRead(RuntimeError):
    """The consumer kept saying it had nothing more while the stream's leader holds more."""


def stream_seq(msg: Msg | Delivery) -> int:
    """The stream sequence of a JetStream message, from its ack subject (no full metadata parse)."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(tokens[5])
    return int(msg.metadata.sequence.stream)


class Delivery:
    """A replayed message as the reader takes it from the parser (`shared.nats_direct`): what a
    rebuild reads of nats-py's `Msg` (subject, reply, data, headers, metadata), at a fifth of its cost."""

    __slots__ = ("_headers", "data", "reply", "subject")

    def __init__(self, subject: str, reply: str, data: bytes, headers: bytes | None) -> None:
        self.subject, self.reply, self.data, self._headers = subject, reply, data, headers

    @property
    def headers(self) -> dict[str, str] | None:
        """The message's headers (the stored message's, e.g. Nats-Msg-Id), parsed when asked for."""
        if self._headers is None:
            return None
        lines = self._headers.decode().split("\r\n")[1:]
        return dict(line.split(": ", 1) for line in lines if ": " in line)

    @property
    def metadata(self) -> Msg.Metadata:
        """Sequences, times and pending count from the ack subject, as nats-py's `Msg` gives them."""
        return Msg(_client=None, subject=self.subject, reply=self.reply, data=self.data).metadata  # type: ignore[arg-type]


class PullReader:
    """Reads what a consumer has to deliver now, in chunks, until it has nothing more.

    Its inbox's messages come straight from the connection's parser (`shared.nats_direct`), or,
    where that cannot be set up, through nats-py's callback as any subscription's."""

    def __init__(
        self, nc: NatsClient, stream: str, consumer: str, *, batch: int = 5000, in_flight: int = 2,
        direct: bool = True,
    ) -> None:
        self.nc = nc
        self.allow_direct = direct  # False: nats-py's own path (the benches' second baseline)
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.request = json.dumps({"batch": batch, "no_wait": True}).encode()
        self.batch = batch
        self.in_flight = in_flight
        self._inbox = nc.new_inbox()
        self._buffer: list[Any] = []
        self._outstanding = 0
        self._head = 0  # messages received for the oldest outstanding request
        self._exhausted = False
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self.direct = False  # taken from the parser (set when reading starts)
        self.statuses: list[str] = []  # the status lines that ended requests (what a short read says)

    def _ended(self, status: str) -> None:
        # 404 no messages / 408 timeout / 409: this request is over; nothing more is there
        if len(self.statuses) < 8:
            self.statuses.append(status)
        self._outstanding -= 1
        self._head = 0
        self._exhausted = True
        self._wake.set()

    def _took(self) -> None:
        self._head += 1
        if self._head == self.batch:
            self._outstanding -= 1
            self._head = 0
        if len(self._buffer) >= self.batch or self._outstanding == 0:
            self._wake.set()

    def _on_raw(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if not data and headers is not None and headers.startswith(b"NATS/1.0 "):  # a status
            self._ended(headers.split(b"\r\n", 1)[0][9:].decode(errors="replace"))
            return
        buffer = self._buffer
        buffer.append(Delivery(subject.decode(), reply.decode(), data, headers))
        self._head += 1  # as _took, inline: this runs for every message
        if self._head == self.batch:
            self._outstanding -= 1
            self._head = 0
        if len(buffer) >= self.batch or self._outstanding == 0:
            self._wake.set()

    async def _on_msg(self, msg: Msg) -> None:
        if not msg.data and msg.headers and msg.headers.get("Status"):
            self._ended(f"{msg.headers.get('Status')} {msg.headers.get('Description', '')}".strip())
            return
        self._buffer.append(msg)
        self._took()

    async def chunks(self) -> AsyncIterator[list[Any]]:
        """Chunks of up to `batch` messages, in stream order, until the consumer is drained.

        Raises TimeoutError when the server sends nothing for SILENCE_S seconds."""
        self._sub = await self.nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        sid = self._sub._id
        # before the first request: no message yet
        self.direct = self.allow_direct and route(self.nc, sid, self._on_raw)
        try:
            while True:
                while (not self._exhausted and self._outstanding < self.in_flight
                       and len(self._buffer) < self.batch * self.in_flight):
                    await self.nc.publish(self.subject, self.request, reply=self._inbox)
                    self._outstanding += 1
                if not self._buffer and not (self._exhausted and self._outstanding <= 0):
                    self._wake.clear()
                    await asyncio.wait_for(self._wake.wait(), SILENCE_S)
                if len(self._buffer) > self.batch:
                    chunk, self._buffer = self._buffer[:self.batch], self._buffer[self.batch:]
                    yield chunk
                elif self._buffer:
                    chunk, self._buffer = self._buffer, []
                    yield chunk
                elif self._exhausted and self._outstanding <= 0:
                    return
        finally:
            unroute(self.nc, sid)
            await self._sub.unsubscribe()


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
