"""JetStream look-ups for tests: every message on a subject, consumers that have caught up."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError


async def stored_messages(js: JetStreamContext, subject: str, stream: str | None = None) -> list[Msg]:
    """Every message stored on `subject` (wildcards allowed), oldest first, read to the end.

    Each as nats-py's `Msg` (subject, data, headers, metadata). Reads until the server says
    nothing is pending, so an empty answer means an empty subject, never a read that stopped
    early (nor one that waited out a silence).
    """
    stream = stream or await js.find_stream_name_by_subject(subject)
    info = await js.stream_info(stream, subjects_filter=subject)
    expected = sum((info.state.subjects or {}).values())
    sub = await js.pull_subscribe(
        subject, stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=30.0))
    found: list[Msg] = []
    try:
        while len(found) < expected:
            msgs = await sub.fetch(min(500, expected - len(found)), timeout=5.0)
            found += msgs
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    assert len(found) >= expected, f"read {len(found)} of {expected} messages on {subject}"
    return found


async def stream_messages(js: JetStreamContext, subject: str, stream: str | None = None) -> list[bytes]:
    """The payloads of `stored_messages`."""
    return [m.data for m in await stored_messages(js, subject, stream)]


async def consumers_caught_up(js: JetStreamContext, stream: str, prefix: str) -> bool:
    """True when every durable on `stream` named `prefix...` has nothing pending or unacknowledged.

    After this, nothing can be delivered again (every message is acknowledged), so counts read
    afterwards are final without waiting out an ack wait.
    """
    try:
        names = [c.name for c in await js.consumers_info(stream) if c.name.startswith(prefix)]
    except NotFoundError:
        return False
    if not names:
        return False
    for name in names:
        info = await js.consumer_info(stream, name)
        if info.num_pending or info.num_ack_pending:
            return False
    return True
