"""How far behind each projection is, and how far the last rebuild got."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from shared.contracts.reporting import Lag, RebuildProgress, StreamLag
from shared.partitions import PARTITIONS

from reporting.projections.base import Projection, Tables, checkpoints


class LagQueries:
    """Lag from the consumers' pending counts and the checkpoints; rebuild progress from its table."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, projections: list[Projection[Any]], *,
        prefix: str = "reporting",
    ) -> None:
        self.prefix = prefix
        self.pool = pool
        self.js = js
        self.projections = projections

    async def lag(self) -> Lag:
        """One entry per projection and stream, plus the rebuilds."""
        out: list[StreamLag] = []
        for projection in self.projections:
            done = await checkpoints(self.pool, projection, Tables.live(projection.tables))
            for source in projection.sources:
                spec = projection.consumer_spec(source, self.prefix)
                behind = 0
                for part in spec.partitioned(list(range(PARTITIONS))):  # every replica's partitions
                    try:
                        info = await self.js.consumer_info(part.stream, part.durable)
                    except NotFoundError:
                        continue
                    behind += info.num_pending + info.num_ack_pending
                try:
                    last_seq = (await self.js.stream_info(spec.stream)).state.last_seq
                except NotFoundError:
                    last_seq = 0
                out.append(StreamLag(
                    projection=projection.name, stream=source.stream,
                    checkpoint=done.get(source.stream, 0), stream_last_seq=last_seq, behind=behind,
                ))
        rows = await self.pool.fetch("SELECT * FROM rebuilds ORDER BY projection")
        rebuilds = [
            RebuildProgress(
                **dict(r),
                percent=(Decimal(100 * r["done"]) / r["total"]).quantize(Decimal("0.1"), ROUND_HALF_UP)
                if r["total"] else Decimal(100 if r["state"] == "switched" else 0),
            )
            for r in rows
        ]
        return Lag(streams=out, rebuilds=rebuilds)
