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
from shared.partitioned_consumer import PartitionedConsumer
from shared.partitions import PARTITIONS
from shared.stream_replay import stream_seq

from reporting.projections.base import Projection, Source, Tables, checkpoint_key
from reporting.projections.pull import StreamingPull

log = structlog.get_logger(__name__)


class PromptConsumer(JetStreamConsumer):
    """The shared consumer (batches, retries, dead letters), fed by streaming pull requests.

    nats-py's `fetch(n)` that finds nothing waiting lingers until it has n messages or its
    timeout, so a trickle of events would wait up to the whole timeout, and it costs a task per
    message. `StreamingPull` hands each event over as it comes and fills batches under load.
    """

    async def read(self) -> None:
        """Pull and handle batches until something fails."""
        puller = StreamingPull(self.js._nc, self.spec.stream, self.spec.durable, batch=self.batch)
        try:
            await puller.start()
            while not puller.gone:
                msgs = await puller.next_batch(self.fetch_timeout_s)
                if msgs:
                    await self.process(msgs)
                    await self.hand_back_if_wanted()
                else:
                    await self.idle()
        finally:
            await puller.stop()


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
    """Runs a projection's consumers, each batch written in one statement with its checkpoint.

    Each stream is read by one durable per customer partition this replica owns
    (shared.partitions): replicas share the partitions, each customer's events stay in order.
    """

    def __init__(
        self, projection: Projection[Any], pool: asyncpg.Pool, js: JetStreamContext, *, batch: int,
        prefix: str = "reporting", ack_wait_s: float = 30.0, partitions: list[int] | None = None,
        lease_dsn: str | None = None, failover_after_s: float = 0.0,
    ) -> None:
        self.projection = projection
        self.pool = pool
        self.tables = Tables.live(projection.tables)
        owned = list(range(PARTITIONS)) if partitions is None else partitions
        self.partitioned = [
            PartitionedConsumer(js, projection.consumer_spec(s, prefix, ack_wait_s), self._handler(s), owned,
                                consumer_cls=PromptConsumer, lease_dsn=lease_dsn, batch=batch,
                                failover_after_s=failover_after_s)
            for s in projection.sources
        ]
        self.consumers: list[JetStreamConsumer] = [c for p in self.partitioned for c in p.consumers]

    def _handler(self, source: Source) -> Any:
        async def handle(msgs: Sequence[Msg]) -> None:
            if msgs:
                bind_from_headers(msgs[-1].headers)
            items, last = decode_batch(self.projection, source.stream, msgs)
            if not items:
                return  # fetch can answer an empty batch: nothing to write, no checkpoint to move
            key = checkpoint_key(source.stream, msgs[-1].subject)  # this partition's row
            await self.projection.write(self.pool, self.tables, key, items, last)

        return handle

    def start(self) -> list[asyncio.Task[None]]:
        """One task per stream (running its partitions)."""
        return [
            asyncio.create_task(p.run(), name=f"projection:{p.spec.durable}") for p in self.partitioned
        ]
