"""Pipelined pull requests on a durable consumer, messages taken in a subscription callback.

nats-py's `fetch()` awaits each message with a timeout of its own (~30k msg/s here); a
callback that only appends, with the next pull requests already waiting at the server, reads
the same stream several times faster. `StreamingPull` keeps a durable consumer's messages
flowing (the live projections); history (rebuilds, benchmarks) is read by `shared.stream_replay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription


def consumer_seq(msg: Msg) -> int:
    """The consumer (delivery) sequence of a JetStream message: one more for each delivery."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:
        return int(tokens[6])
    return int(msg.metadata.sequence.consumer)


class DeliveriesLost(RuntimeError):
    """Deliveries of the durable never reached this reader (cut in flight): it must rewind."""


class ReaderStalled(RuntimeError):
    """The connection was re-established, or the server answers no pull request: start afresh."""


class StreamingPull:
    """Lingering pull requests kept in flight on a durable consumer: messages flow as they come.

    Each request asks for `batch` messages and expires after `expires_s`; a request is over when
    its `batch` messages came or a status (408 expired, 409 ...) says so, and is then replaced.
    A lone event is handed over at once; under load, batches fill up without a round trip.

    Deliveries lost in flight (a link cut mid-batch) show as a gap in the consumer sequence:
    what came before the gap is handed over, then `next_batch` raises `DeliveriesLost`, so the
    caller rewinds the durable to its ack floor instead of acking past messages it never got
    (with AckPolicy.ALL an ack of a later message would acknowledge them: lost for good).
    After a reconnect, or when requests asked again still get no answer (not even their 408),
    it raises `ReaderStalled`: requests and deliveries of the old connection are not trusted,
    the caller starts a new reader from the durable's ack floor (a bounded stall, never a hang).
    """

    def __init__(
        self, nc: NatsClient, stream: str, consumer: str, *, batch: int, in_flight: int = 2,
        expires_s: float = 5.0,
    ) -> None:
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.request = json.dumps({"batch": batch, "expires": int(expires_s * 1e9)}).encode()
        self.batch = batch
        self.in_flight = in_flight
        self.expires_s = expires_s
        self._inbox = nc.new_inbox()
        self._buffer: list[Msg] = []
        self._outstanding = 0
        self._head = 0
        self._last_request = 0.0
        self._last_message = 0.0
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._delivered = 0  # the consumer sequence of the last message received
        self._asked_again = False  # requests were taken for lost and sent again, unanswered since
        self._reconnects = 0  # the connection's reconnect count when this reader started
        self.lost: str | None = None  # set at a gap in the deliveries: nothing after it is kept
        self.gone = False  # the consumer was deleted: the caller re-creates it

    async def start(self) -> None:
        """Subscribe the inbox the requests are answered on."""
        self._reconnects = self.nc.stats["reconnects"]
        self._sub = await self.nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def stop(self) -> None:
        """Unsubscribe (requests still at the server expire by themselves)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_msg(self, msg: Msg) -> None:
        self._last_message = time.monotonic()
        self._asked_again = False
        status = msg.headers.get("Status") if not msg.data and msg.headers else None
        if status:
            self._outstanding = max(0, self._outstanding - 1)
            self._head = 0
            if status == "409" and "deleted" in (msg.headers or {}).get("Description", "").lower():
                self.gone = True
            self._wake.set()
            return
        if self.lost is not None:
            return
        delivered = consumer_seq(msg)
        if self._delivered and delivered != self._delivered + 1:
            self.lost = f"deliveries {self._delivered + 1}..{delivered - 1} never came"
            self._wake.set()
            return
        self._delivered = delivered
        self._buffer.append(msg)
        self._head += 1
        if self._head == self.batch:
            self._outstanding = max(0, self._outstanding - 1)
            self._head = 0
        self._wake.set()

    async def _top_up(self) -> None:
        now = time.monotonic()
        silent = now - max(self._last_request, self._last_message)
        if self._outstanding and silent > self.expires_s + 2:  # every request expires with a 408
            if self._asked_again:  # asking again did not help: the caller starts a new reader
                raise ReaderStalled(f"no answer to a pull request for {silent:.0f} s, asked again")
            self._outstanding = 0  # requests lost (a reconnect, a server restart): ask again
            self._asked_again = True
        while self._outstanding < self.in_flight:
            await self.nc.publish(self.subject, self.request, reply=self._inbox)
            self._outstanding += 1
            self._last_request = now

    async def next_batch(self, wait_s: float) -> list[Msg]:
        """Up to `batch` messages; waits up to `wait_s` for the first (an empty list: none came).

        Raises `DeliveriesLost` once the messages before a gap in the deliveries are handed over,
        `ReaderStalled` after a reconnect or when the server stopped answering.
        """
        if self.nc.stats["reconnects"] != self._reconnects:
            raise ReaderStalled("reconnected to NATS: reading again from the durable's ack floor")
        if self.lost is not None and not self._buffer:
            raise DeliveriesLost(self.lost)
        await self._top_up()
        if not self._buffer:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
            await self._top_up()
        chunk, self._buffer = self._buffer[: self.batch], self._buffer[self.batch:]
        return chunk
