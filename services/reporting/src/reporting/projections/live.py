"""Keeps projections live: one durable batched consumer per projection and stream."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError
from shared.consumer import JetStreamConsumer, Poison
from shared.logging import bind_from_headers

from reporting.projections.base import Projection, Source, Tables

log = structlog.get_logger(__name__)


def decode_batch(projection: Projection[Any], stream: str, msgs: Sequence[Msg]) -> tuple[list[Any], int]:
    """Decode messages; a malformed one is poison (the consumer dead-letters it alone)."""
    items = []
    last = 0
    for msg in msgs:
        seq = msg.metadata.sequence.stream
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
            JetStreamConsumer(js, projection.consumer_spec(s, prefix), self._handler(s), batch=batch)
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
