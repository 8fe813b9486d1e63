"""JetStream streams and consumers, declared as code and created idempotently at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from shared.partitions import PartitionKey

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_S = 120.0


@dataclass(frozen=True)
class StreamSpec:
    """One stream: its name, subjects and retention."""

    name: str
    subjects: list[str]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    # the subjects stored with a customer partition token (see shared.partitions)
    partition_key: PartitionKey | None = None

    def config(self, replicas: int = 1) -> StreamConfig:
        """The nats-py StreamConfig for this spec."""
        return StreamConfig(
            name=self.name,
            subjects=self.subjects,
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=0,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            description=self.description or None,
            subject_transform=self.partition_key.transform() if self.partition_key else None,
        )


CUSTOMER_EVENTS = StreamSpec(
    "CUSTOMER_EVENTS",
    ["events.customer.>", "events.settings.>"],
    description="Every event of the customer and settings aggregates, kept forever.",
    # by stream id: the customer for customer events, `global` for the settings aggregate
    partition_key=PartitionKey("events.*.*.*", 2),
)
VERIFICATION_EVENTS = StreamSpec(
    "VERIFICATION_EVENTS", ["events.verification.>"], description="Verification outcomes.",
    partition_key=PartitionKey("events.verification.*.*", 1),
)
NOTIFICATION_EVENTS = StreamSpec(
    "NOTIFICATION_EVENTS", ["events.notification.>"], description="Delivery outcomes.",
    partition_key=PartitionKey("events.notification.*.*", 1),
)
BILLING_EVENTS = StreamSpec(
    "BILLING_EVENTS",
    ["events.billing.>", "billing.payments.>"],
    description="Invoices generated and payments received.",
    partition_key=PartitionKey("billing.payments.*", 1),
)
CALLS = StreamSpec(
    "CALLS", ["calls.started.*", "calls.cdr.*"], description="Call starts and records from the switch.",
    partition_key=PartitionKey("calls.*.*", 2),
)
NOTIFY = StreamSpec(
    "NOTIFY",
    ["notify.>"],
    retention=RetentionPolicy.WORK_QUEUE,
    description="Work queue of system messages for the notifier.",
    partition_key=PartitionKey("notify.*.*.*", 3),
)
ALERT_EVENTS = StreamSpec(
    "ALERT_EVENTS", ["events.alert.>"], description="Alert firings (AlertFired), by customer.",
    partition_key=PartitionKey("events.alert.*.*", 1),
)
OPS_EVENTS = StreamSpec(
    "OPS_EVENTS", ["events.ops.>"],
    description="Operational events: a message dead-lettered by a consumer (with its error).",
)
DEAD_LETTERS = StreamSpec(
    "DEAD_LETTERS", ["dlq.>"], description="Messages a consumer gave up on, with the error."
)

ALL_STREAMS = [
    CUSTOMER_EVENTS,
    VERIFICATION_EVENTS,
    NOTIFICATION_EVENTS,
    BILLING_EVENTS,
    CALLS,
    NOTIFY,
    ALERT_EVENTS,
    OPS_EVENTS,
    DEAD_LETTERS,
]

BY_NAME = {spec.name: spec for spec in ALL_STREAMS}


def partition_key_of(stream: str) -> PartitionKey | None:
    """The partition key of a declared stream (None: not partitioned, or not ours)."""
    spec = BY_NAME.get(stream)
    return spec.partition_key if spec else None


async def ensure_streams(
    js: JetStreamContext, specs: list[StreamSpec] | None = None, *, replicas: int = 1
) -> None:
    """Create each stream, or bring an existing one up to its declared config."""
    for spec in specs or ALL_STREAMS:
        cfg = spec.config(replicas)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
                log.info("stream_created", stream=spec.name)
                continue
            except BadRequestError:
                pass  # another service created it at the same moment
        await js.update_stream(cfg)
