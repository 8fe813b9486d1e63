"""Keeps projections live: one durable batched consumer per projection and stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from pydantic import ValidationError
from shared.consumer import JetStreamConsumer, Poison, ensure_consumer
from shared.logging import bind_from_headers

from reporting.projections.base import Projection, Source, Tables
from reporting.projections.pull import stream_seq

log = structlog.get_logger(__name__)
FILL_S = 0.005


class PromptConsumer(JetStreamConsumer):
    """The shared consumer, fetching so that a lone event is handled at once.

    nats-py's `fetch(n)` that finds nothing waiting lingers until it has n messages or its
    timeout: a trickle of events would wait up to the whole timeout. Here a lingering
    `fetch(1)` waits for the first message, then `fetch(n - 1)` with a few milliseconds'
    expiry takes whatever else is already there.
    """

    async def run(self) -> None:
        """Fetch, handle, ack; reconnect and go on after any failure of our own."""
        while True:
            try:
                await ensure_consumer(self.js, self.spec)
                sub = await self.js.pull_subscribe_bind(self.spec.durable, stream=self.spec.stream)
                try:
                    while True:
                        try:
                            msgs = await sub.fetch(1, timeout=self.fetch_timeout_s)
                        except (NatsTimeoutError, TimeoutError):
                            await self._record_lag()  # the lag gauge on /metrics
                            continue
                        if self.batch > 1:
                            with contextlib.suppress(NatsTimeoutError, TimeoutError):
                                msgs += await sub.fetch(self.batch - 1, timeout=FILL_S)
                        await self.process(msgs)
                finally:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer_restarting", durable=self.spec.durable, error=str(exc))
                await asyncio.sleep(1.0)


def decode_batch(projection: Projection[Any], stream: str, msgs: Sequence[Msg]) -> tuple[list[Any], int]:
    """Decode messages; a malformed one is poison (the consumer dead-letters it alone)."""
    items = []
    last = 0
    for msg in msgs:
        seq = stream_seq(msg)
        try:
            items.append(projection.decode(stream, seq, msg.subject, msg.data))
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            raise Poison(f"{msg.subject} at {stream}#{seq}: {exc}") from exc
        last = max(last, seq)
    return items, last


class LiveProjection:
    """Runs a projection's consumers, each batch written in one statement with its checkpoint."""

    def __init__(
        self, projection: Projection[Any], pool: asyncpg.Pool, js: JetStreamContext, *, batch: int,
        prefix: str = "reporting",
    ) -> None:
        self.projection = projection
        self.pool = pool
        self.tables = Tables.live(projection.tables)
        self.consumers = [
            PromptConsumer(js, projection.consumer_spec(s, prefix), self._handler(s), batch=batch)
            for s in projection.sources
        ]

    def _handler(self, source: Source) -> Any:
        async def handle(msgs: Sequence[Msg]) -> None:
            if msgs:
                bind_from_headers(msgs[-1].headers)
            items, last = decode_batch(self.projection, source.stream, msgs)
            if not items:
                return  # fetch can answer an empty batch: nothing to write, no checkpoint to move
            await self.projection.write(self.pool, self.tables, source.stream, items, last)

        return handle

    def start(self) -> list[asyncio.Task[None]]:
        """One task per consumer."""
        return [
            asyncio.create_task(c.run(), name=f"projection:{c.spec.durable}") for c in self.consumers
        ]
