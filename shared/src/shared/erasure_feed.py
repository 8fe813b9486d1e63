"""Erasures as they happen: a durable consumer of CustomerErased / ContactErased for the services
that keep a plaintext copy of personal data (the notifier's delivery history, verification's
codes), so each drops its copy (product.md section 15, docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared.consumer import ConsumerSpec, Poison
from shared.envelope import EventEnvelope
from shared.partitioned_consumer import PartitionedConsumer
from shared.personal_data import contact_subject
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

ERASURE_TYPES = ("CustomerErased", "ContactErased")


@dataclass(frozen=True)
class Erasure:
    """Whose personal data was erased: a whole customer, or some of its contacts."""

    customer_id: str
    whole_customer: bool
    contact_ids: list[str]
    subjects: list[str]


def erasure_of(event: EventEnvelope) -> Erasure | None:
    """The erasure an event announces (None: another event)."""
    if event.type not in ERASURE_TYPES:
        return None
    subjects = [str(s) for s in event.data.get("subjects") or []]
    prefix = contact_subject("")
    contacts = [s[len(prefix):] for s in subjects if s.startswith(prefix)]
    return Erasure(event.stream_id, event.type == "CustomerErased", contacts, subjects)


Scrub = Callable[[Erasure], Awaitable[None]]


def erasure_consumer(
    js: JetStreamContext, durable: str, scrub: Scrub, settings: CommonSettings,
    forget: Callable[[list[str]], None] | None = None,
) -> PartitionedConsumer:
    """A consumer of the erasure events that runs `scrub` for each (and `forget` on its keys)."""

    async def handle(msgs: Sequence[Msg]) -> None:
        for msg in msgs:
            try:
                erasure = erasure_of(EventEnvelope.model_validate_json(msg.data))
            except ValueError as exc:
                raise Poison(f"not an event: {exc}") from exc
            if erasure is None:
                continue
            if forget is not None:
                forget(erasure.subjects)
            await scrub(erasure)
            log.info("personal_data_dropped", customer_id=erasure.customer_id,
                     contacts=len(erasure.contact_ids), whole_customer=erasure.whole_customer)

    spec = ConsumerSpec(
        stream="CUSTOMER_EVENTS", durable=durable,
        filter_subjects=[f"events.customer.*.{t}" for t in ERASURE_TYPES],
    )
    return PartitionedConsumer(js, spec, handle, settings.partitions, lease_dsn=settings.database_url,
                               failover_after_s=settings.partition_failover_s)


async def erasures_on_stream(js: JetStreamContext, stream: str = "CUSTOMER_EVENTS") -> list[Erasure]:
    """Every erasure the stream holds (direct reads, one per erase event; two when there are none).

    Run at start by each service that keeps plaintext copies, so a database restored from a
    backup taken before an erasure drops them again before anything is served.
    """
    found: list[Erasure] = []
    for event_type in ERASURE_TYPES:
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq, subject=f"events.customer.*.{event_type}.>", next=True)
            except NotFoundError:
                break
            erasure = erasure_of(EventEnvelope.model_validate_json(msg.data or b"{}"))
            if erasure is not None:
                found.append(erasure)
            seq = (msg.seq or seq) + 1
    return found


async def replay(js: JetStreamContext, scrub: Scrub) -> int:
    """Scrub again for every erasure on the stream (idempotent); how many there were."""
    erasures = await erasures_on_stream(js)
    for erasure in erasures:
        await scrub(erasure)
    if erasures:
        log.info("erasures_replayed", erasures=len(erasures))
    return len(erasures)
