"""A durable pull consumer's declaration and its life on the server: create, update, re-create."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.partitions import PartitionKey, partition_specs
from shared.streams import partition_key_of

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer on one stream."""

    stream: str
    durable: str
    filter_subjects: list[str]
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    backoff_s: list[float] = field(default_factory=lambda: [0.2, 1.0, 5.0, 15.0])
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    max_ack_pending: int = 20_000
    # where given-up messages go; the partitions of one consumer share their base durable's
    dead_letter_subject: str = ""
    # AckPolicy.ALL: one ack per batch (the batch's last message) instead of one per message;
    # only for a durable with a single, ordered reader (a partition). nats-server spent ~30 µs
    # of CPU per explicitly acked call record (docs/performance.md, issue 21)
    ack_all: bool = False
    # a partition of a stream that stores the token before the key: its filters in the older
    # layout (token last), read too while such messages remain ahead (shared.partition_layout)
    legacy_filters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.dead_letter_subject:
            object.__setattr__(self, "dead_letter_subject", f"dlq.{self.durable}")

    def partitioned(self, owned: list[int], key: PartitionKey | None = None) -> list[ConsumerSpec]:
        """This consumer split into one durable per owned customer partition (shared.partitions).

        `key` defaults to the partition key its stream is declared with in shared.streams.
        """
        return partition_specs(self, key or partition_key_of(self.stream), owned)  # keeps dead_letter_subject

    def config(self) -> ConsumerConfig:
        """The nats-py consumer config."""
        subjects = self.filter_subjects
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL if self.ack_all else AckPolicy.EXPLICIT,
            deliver_policy=self.deliver_policy,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or update it to the declared config."""
    try:
        info = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        await js.add_consumer(spec.stream, spec.config())
        return
    config = spec.config()
    # where it starts is fixed at creation (a rewound durable starts at a sequence)
    config.deliver_policy, config.opt_start_seq = info.config.deliver_policy, info.config.opt_start_seq
    try:
        await js.add_consumer(spec.stream, config)
    except Exception as exc:  # an incompatible change keeps the old config
        log.warning("consumer_not_updated", durable=spec.durable, error=str(exc))


async def retire_unpartitioned(js: JetStreamContext, spec: ConsumerSpec, key: PartitionKey | None) -> None:
    """Delete the single durable a partitioned consumer replaced (its partitions re-read idempotently).

    On a work queue its filter would overlap the partitions' and stop them being created.
    """
    if key is None:
        return
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(spec.stream, spec.durable)
        log.info("consumer_retired", stream=spec.stream, durable=spec.durable)


async def _recreate_at(js: JetStreamContext, spec: ConsumerSpec, start: int) -> None:
    """Delete the durable if it exists and add it again, delivering from stream sequence `start`."""
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(spec.stream, spec.durable)
    config = spec.config()
    config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
    config.opt_start_seq = start
    await js.add_consumer(spec.stream, config)


async def restart_at(js: JetStreamContext, spec: ConsumerSpec, start: int) -> None:
    """Re-create the durable (it may not exist) to deliver from stream sequence `start` on."""
    await _recreate_at(js, spec, start)
    log.info("consumer_restarted_at", durable=spec.durable, start_seq=start, filters=spec.filter_subjects)


async def rewind(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Make the messages delivered but never acknowledged come again now, and first, in order.

    JetStream would redeliver them only when their ack wait runs out, after the messages behind
    them; so the durable is re-created to start at its ack floor. Only for a durable read by
    this process alone.
    """
    info = await js.consumer_info(spec.stream, spec.durable)
    if not info.num_ack_pending:
        return
    start = (info.ack_floor.stream_seq if info.ack_floor else 0) + 1
    await _recreate_at(js, spec, start)
    log.info("consumer_rewound", durable=spec.durable, start_seq=start, unacknowledged=info.num_ack_pending)
