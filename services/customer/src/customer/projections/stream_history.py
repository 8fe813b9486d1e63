"""A stream's history read fast for a rebuild: an ephemeral consumer without acks, pulls kept in flight.

Two pull requests of `batch` messages stay outstanding, so the server sends the next batch while
this process handles the one before (nats-py's `fetch()` waits a round trip per batch). The read
stops at `until_seq` or when the messages counted when the consumer was made have come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from shared.partitions import stored_filters
from shared.streams import partition_key_of

_IN_FLIGHT = 2


def seq_of(msg: Msg) -> int:
    """A message's stream sequence (its ack subject's sixth token when it has the short form)."""
    tokens = msg.reply.split(".") if msg.reply else []
    return int(tokens[5]) if len(tokens) == 9 else int(msg.metadata.sequence.stream)


async def _ephemeral(js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int) -> str:
    filters = stored_filters(list(subjects), partition_key_of(stream)) if subjects else []
    name = f"ledger-rebuild-{uuid.uuid4().hex[:12]}"
    await js.add_consumer(stream, ConsumerConfig(
        name=name, ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(start_seq, 1), mem_storage=True, inactive_threshold=60.0,
        filter_subject=filters[0] if len(filters) == 1 else None,
        filter_subjects=filters if len(filters) > 1 else None,
    ))
    return name


async def count(js: JetStreamContext, stream: str, subjects: Sequence[str], start_seq: int = 1) -> int:
    """Messages of these subjects (none: every one) from start_seq on."""
    name = await _ephemeral(js, stream, subjects, start_seq)
    try:
        return int((await js.consumer_info(stream, name)).num_pending or 0)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, name)


async def history(
    js: JetStreamContext, stream: str, subjects: Sequence[str], *, start_seq: int, until_seq: int,
    batch: int = 5000,
) -> AsyncIterator[list[Msg]]:
    """Chunks of up to `batch` messages in stream order, start_seq <= sequence <= until_seq."""
    if until_seq < start_seq:
        return
    name = await _ephemeral(js, stream, subjects, start_seq)
    nc = js._nc
    inbox = nc.new_inbox()
    request = json.dumps({"batch": batch, "expires": 10_000_000_000}).encode()
    buffer: list[Msg] = []
    arrived = asyncio.Event()
    lost = [0]  # requests that ended (a status) before their batch came
    need = [batch]  # wake the reader at a whole batch (or the last, shorter one)

    async def on_msg(msg: Msg) -> None:
        if not msg.data and msg.headers and msg.headers.get("Status"):
            lost[0] += 1
            arrived.set()
            return
        buffer.append(msg)
        if len(buffer) >= need[0]:
            arrived.set()

    sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
    try:
        want = int((await js.consumer_info(stream, name)).num_pending or 0)
        got = asked = 0
        while got < want:
            if lost[0]:  # ask again for what the ended requests did not bring
                asked, lost[0] = got + len(buffer), 0
            while asked - got < batch * _IN_FLIGHT:
                await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}", request, reply=inbox)
                asked += batch
            need[0] = min(batch, want - got)
            if len(buffer) < need[0]:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 30)
                if len(buffer) < need[0]:
                    continue
            chunk, buffer[:] = buffer[:batch], buffer[batch:]
            got += len(chunk)
            if seq_of(chunk[-1]) > until_seq:
                if wanted := [m for m in chunk if seq_of(m) <= until_seq]:
                    yield wanted
                return
            yield chunk
            if seq_of(chunk[-1]) == until_seq:
                return
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, name)
