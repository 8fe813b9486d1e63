"""A consumer split by customer partition: one durable per partition, each read in order by its own loop."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js import JetStreamContext

from shared.consumer import BatchHandler, JetStreamConsumer
from shared.consumer_spec import ConsumerSpec, retire_unpartitioned
from shared.leases import PartitionLeases
from shared.partitions import PARTITIONS, PartitionKey
from shared.streams import partition_key_of


class PartitionedConsumer:
    """A consumer split by customer partition: one loop per owned partition, each in order.

    Runs the partitions of `spec` this replica owns (see shared.partitions), each a
    `JetStreamConsumer` (or `consumer_cls`) of its own, so partitions go on in parallel while
    one partition's messages are handled one batch after another. With leases and
    `failover_after_s`, it also stands in for the other replicas' partitions: one whose replica
    has been gone that long is read here until the replica is back.
    """

    def __init__(
        self, js: JetStreamContext, spec: ConsumerSpec, handler: BatchHandler, owned: list[int], *,
        consumer_cls: type[JetStreamConsumer] = JetStreamConsumer, key: PartitionKey | None = None,
        lease_dsn: str | None = None, failover_after_s: float = 0.0, **options: Any,
    ) -> None:
        self.js = js
        self.spec = spec
        self.key = key or partition_key_of(spec.stream)
        # with a database, each partition is read by one process at a time (shared.leases)
        self.leases = PartitionLeases(lease_dsn) if lease_dsn else None
        self.consumers = [consumer_cls(js, s, handler, ordered=True, leases=self.leases, **options)
                          for s in spec.partitioned(owned, self.key)]
        if self.leases is not None and failover_after_s > 0:
            # stand in for the other replicas' partitions while they are down
            others = [p for p in range(PARTITIONS) if p not in owned]
            self.consumers += [
                consumer_cls(js, s, handler, ordered=True, leases=self.leases,
                             stand_in_after_s=failover_after_s, **options)
                for s in spec.partitioned(others, self.key)]

    @property
    def handled(self) -> int:
        """Messages handled by every partition."""
        return sum(c.handled for c in self.consumers)

    @property
    def dead_lettered(self) -> int:
        """Messages dead-lettered by every partition."""
        return sum(c.dead_lettered for c in self.consumers)

    async def run(self) -> None:
        """Retire the unpartitioned durable of earlier releases, then run every partition."""
        try:
            await retire_unpartitioned(self.js, self.spec, self.key)
            await asyncio.gather(*(c.run() for c in self.consumers))
        finally:
            if self.leases is not None:
                await self.leases.close()
