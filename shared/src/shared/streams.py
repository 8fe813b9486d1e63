"""JetStream streams and consumers, declared as code and created idempotently at start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

import structlog
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServerError, ServiceUnavailableError

from shared.partition_layout import new_stream_metadata, update_stream
from shared.partitions import PartitionKey

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_S = 120.0
# how long start-up waits for JetStream to answer (a cluster electing its meta leader)
JETSTREAM_READY_BUDGET_S = 60.0
T = TypeVar("T")


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
    # the token before the customer: a partition's filter is a branch of the stored subjects (ADR 0026)
    partition_key=PartitionKey("calls.*.*", 2, before=True),
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


def _not_ready(exc: BaseException) -> bool:
    """JetStream cannot answer yet: no meta leader (timeout, no responders, 503) or peers missing."""
    if isinstance(exc, NatsTimeoutError | TimeoutError | NoRespondersError | ServiceUnavailableError):
        return True
    return isinstance(exc, ServerError) and "peers" in str(exc).lower()


async def until_jetstream_answers(
    op: Callable[[], Awaitable[T]], what: str, *, budget_s: float = JETSTREAM_READY_BUDGET_S,
) -> T:
    """Run `op`, retrying (0.25 s doubling to 4 s) while JetStream is not ready, for `budget_s` at most.

    A cluster that is starting, or electing a new meta leader after losing a node, times out
    API requests for a few seconds; a service starting then waits instead of exiting.
    """
    deadline = time.monotonic() + budget_s
    delay, attempt = 0.25, 0
    while True:
        attempt += 1
        try:
            return await op()
        except Exception as exc:
            if not _not_ready(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("jetstream_not_ready", op=what, attempt=attempt, retry_in_s=delay,
                        error=str(exc) or type(exc).__name__)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 4.0)


async def until_replicas_current(
    js: JetStreamContext, streams: list[str], *, budget_s: float = 30.0,
) -> list[str]:
    """Wait (bounded) until each stream has a leader and every replica is current; those still behind.

    A rebuild reads a stream through a fresh consumer, which a cluster may place on any replica:
    one still catching up after a restart reads as a shorter stream (the rebuild is then refused,
    not wrong). Without a cluster there is nothing to wait for.
    """
    deadline = time.monotonic() + budget_s
    behind = list(streams)
    while True:
        still = []
        for name in behind:
            cluster = (await js.stream_info(name)).cluster
            if cluster is None:
                continue
            lagging = any(not r.current or r.offline for r in cluster.replicas or [])
            if not cluster.leader or lagging:
                still.append(name)
        if not still or time.monotonic() >= deadline:
            if still:
                log.warning("stream_replicas_behind", streams=still, waited_s=budget_s)
            return still
        behind = still
        await asyncio.sleep(0.2)


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int) -> None:
    cfg = spec.config(replicas)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        try:
            await js.add_stream(replace(cfg, metadata=new_stream_metadata(spec.partition_key)))
            log.info("stream_created", stream=spec.name)
            return
        except BadRequestError:
            info = await js.stream_info(spec.name)  # another service created it at the same moment
    # switches a stream to the layout its key declares (shared.partition_layout)
    await update_stream(js, spec.partition_key, cfg, info)


async def ensure_streams(
    js: JetStreamContext, specs: list[StreamSpec] | None = None, *, replicas: int = 1,
    budget_s: float = JETSTREAM_READY_BUDGET_S,
) -> None:
    """Create each stream, or bring an existing one up to its declared config.

    Waits up to `budget_s` per stream for JetStream to answer (see `until_jetstream_answers`).
    """
    for spec in specs or ALL_STREAMS:
        await until_jetstream_answers(partial(_ensure_stream, js, spec, replicas),
                                      f"ensure_stream {spec.name}", budget_s=budget_s)
