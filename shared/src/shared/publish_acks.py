"""JetStream publishes of a relay's batch: one write for the batch, every ack awaited with a deadline.

nats-py's `publish_async` costs, per message, a future, a NUID, `os.urandom`, a Python header
encoding and a lookup of its ack (docs/performance.md, "Commands: publish path and PostgreSQL,
third round"). `BatchPublisher` keeps JetStream's per-message protocol (each message gets its
own reply subject, and JetStream answers each with its own ack) but pays Python once per batch
where it can: one inbox subscription per publisher, reply subjects `<inbox>.<counter>`, one
future per batch, and the batch's HPUB lines handed to the connection as one write.
A batch counts as published only when JetStream acked every message of it; an error ack, a
"no responders" or the deadline raises, and the caller starts over (`Nats-Msg-Id` dedup
absorbs what was already stored).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import (
    BadHeaderError,
    BadSubjectError,
    ConnectionClosedError,
    ConnectionDrainingError,
    MaxPayloadError,
    OutboundBufferLimitError,
)
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError

ACK_TIMEOUT_S = 10.0
_SUBJECT_BREAKS = re.compile(r"[ \t\r\n]")  # would end the HPUB line early: refused, as nats-py does
_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ONE_LINE = str.maketrans({"\r": " ", "\n": " "})  # a value never opens a header line of its own
_keys_seen: set[str] = set()

# one message of a batch: subject, header block (`header_block`), payload
Message = tuple[str, bytes, bytes]


def one_line(value: str) -> str:
    """A header value as nats-py writes it: stripped, CR and LF made spaces."""
    value = value.strip()
    return value.translate(_ONE_LINE) if "\r" in value or "\n" in value else value


def header_block(headers: Mapping[str, str]) -> bytes:
    """The NATS header block of `headers`: the same bytes nats-py's `publish(headers=...)` writes."""
    lines = ["NATS/1.0\r\n"]
    for key, value in headers.items():
        if key not in _keys_seen:
            if not _HEADER_KEY.fullmatch(key.strip()):
                raise BadHeaderError(key)
            _keys_seen.add(key)
        lines.append(f"{key.strip()}: {one_line(value)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


@dataclass
class _Batch:
    first: int  # the counter of its first message's reply subject
    size: int
    done: asyncio.Future[None]
    acked: bytearray = field(init=False)
    left: int = field(init=False)

    def __post_init__(self) -> None:
        self.acked = bytearray(self.size)
        self.left = self.size


class BatchPublisher:
    """Publishes batches to JetStream over one connection and waits until each message is acked.

    One batch at a time (the relays publish a batch, wait, then delete its rows), so at most one
    batch of messages is unacknowledged: the batch size is the back-pressure.
    Uses two internals of nats-py's client, `_send_command` and `_flush_pending` (the path its
    own `publish` takes); shared/tests/test_publish_acks.py holds them to it on a real server.
    """

    def __init__(self, js: JetStreamContext | NatsClient, *, timeout: float = ACK_TIMEOUT_S) -> None:
        self._nc: NatsClient = js._nc if isinstance(js, JetStreamContext) else js
        self.timeout = timeout
        self._inbox = b""
        self._cut = 0
        self._counter = 0
        self._batch: _Batch | None = None
        self._lock = asyncio.Lock()

    async def _subscribe(self) -> None:
        inbox = self._nc.new_inbox()  # the identity's own prefix: what it may subscribe to
        await self._nc.subscribe(inbox + ".*", cb=self._on_ack)
        self._inbox = inbox.encode()
        self._cut = len(inbox) + 1

    async def _on_ack(self, msg: Msg) -> None:
        batch = self._batch
        try:
            index = int(msg.subject[self._cut:]) - batch.first if batch is not None else -1
        except ValueError:
            return
        if batch is None or not 0 <= index < batch.size or batch.acked[index] or batch.done.done():
            return  # a late ack of a batch given up on, or one seen already
        if not msg.data:  # "no responders": no stream takes this subject (a 503 status, no body)
            batch.done.set_exception(NoStreamResponseError())
            return
        try:
            ack = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            ack = {"error": {"code": 500, "description": f"unreadable ack {msg.data[:80]!r}"}}
        if "error" in ack or "seq" not in ack:
            try:
                APIError.from_error(ack.get("error") or {"code": 500, "description": f"not an ack: {ack}"})
            except APIError as error:  # nats-py raises the error of the code (BadRequestError ...)
                batch.done.set_exception(error)
            return
        batch.acked[index] = 1
        batch.left -= 1
        if batch.left == 0:
            batch.done.set_result(None)

    def _wire(self, messages: Sequence[Message], first: int) -> bytes:
        limit = self._nc.max_payload
        inbox = self._inbox
        parts = []
        for i, (subject, headers, payload) in enumerate(messages):
            if not subject or _SUBJECT_BREAKS.search(subject):
                raise BadSubjectError
            size = len(headers) + len(payload)
            if size > limit:
                raise MaxPayloadError
            parts.append(b"HPUB %b %b.%d %d %d\r\n%b%b\r\n" % (
                subject.encode(), inbox, first + i, len(headers), size, headers, payload))
        return b"".join(parts)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish the messages in order; return once JetStream acked every one, else raise."""
        if not messages:
            return
        async with self._lock:
            if not self._inbox:
                await self._subscribe()
            nc = self._nc
            first, self._counter = self._counter, self._counter + len(messages)
            wire = self._wire(messages, first)
            if nc.is_closed:
                raise ConnectionClosedError
            if nc.is_draining_pubs:
                raise ConnectionDrainingError
            if not nc.is_connected and (
                nc._max_pending_size <= 0 or len(wire) + nc._pending_data_size > nc._max_pending_size
            ):
                # as nats-py's publish: while reconnecting, buffered up to its limit
                raise OutboundBufferLimitError
            batch = _Batch(first, len(messages), asyncio.get_running_loop().create_future())
            self._batch = batch
            try:
                nc.stats["out_msgs"] += len(messages)
                nc.stats["out_bytes"] += sum(len(m[2]) for m in messages)
                await nc._send_command(wire)
                if nc._flush_queue is not None and nc._flush_queue.empty():
                    await nc._flush_pending()
                await asyncio.wait_for(batch.done, self.timeout)
            finally:
                self._batch = None
