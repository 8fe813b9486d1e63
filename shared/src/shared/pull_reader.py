"""The pipelined pull of a consumer's messages, taken straight from the connection's parser.

`PullReader` keeps two pull requests of `batch` messages outstanding (`no_wait`: the server's
404 says the consumer has nothing more) and hands the messages over in chunks; its inbox is
served by `shared.nats_direct` (light `Delivery` objects, not nats-py's `Msg`) where nats-py's
internals allow it. `shared.stream_replay` reads a stream's history with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.nats_direct import route, unroute

SILENCE_S = 30.0  # no message nor status for this long: the read fails (never a hang)


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

    async def chunks(self) -> AsyncGenerator[list[Any], None]:
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
