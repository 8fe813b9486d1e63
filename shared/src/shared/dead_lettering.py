"""Parking a message a consumer gave up on: the letter on `dlq.<consumer>` and its error event.

The letter keeps the message's bytes with its error and where it came from in headers (what
`shared.dead_letters` lists and replays); the event (`MessageDeadLettered` on OPS_EVENTS) is for
alerting and operators, best effort: the letter itself is what is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared.contracts.events import REGISTRY
from shared.contracts.events.ops import OPS_CATEGORY, MessageDeadLettered
from shared.envelope import Metadata
from shared.logging import CORRELATION_HEADER
from shared.partitions import published_subject
from shared.streams import partition_key_of

if TYPE_CHECKING:
    from shared.consumer_spec import ConsumerSpec

log = structlog.get_logger(__name__)

DEAD_LETTERED = MessageDeadLettered.TYPE  # the error event of a dead letter, on OPS_EVENTS


async def park(js: JetStreamContext, spec: ConsumerSpec, msg: Msg, exc: BaseException) -> None:
    """Park `msg` on `dlq.<durable>` (of the unpartitioned durable) with its error, and announce it."""
    meta = msg.metadata
    headers = {
        "Patchbay-Error": f"{type(exc).__name__}: {exc}"[:1000],
        # as published (what a replay publishes again); the stored one has the partition token
        "Patchbay-Original-Subject": published_subject(msg.subject, partition_key_of(meta.stream)),
        "Patchbay-Stored-Subject": msg.subject,
        "Patchbay-Original-Stream": meta.stream,
        "Patchbay-Original-Sequence": str(meta.sequence.stream),
        "Patchbay-Consumer": spec.durable,
        "Nats-Msg-Id": f"dlq:{spec.durable}:{meta.stream}:{meta.sequence.stream}",
    }
    parked = await js.publish(spec.dead_letter_subject, msg.data, headers=headers)
    await _error_event(js, spec, msg, headers, parked.seq)


async def _error_event(
    js: JetStreamContext, spec: ConsumerSpec, msg: Msg, letter: dict[str, str], parked_seq: int,
) -> None:
    """The dead letter as an event (`events.ops.<consumer>.MessageDeadLettered`, stream OPS_EVENTS)."""
    consumer = spec.dead_letter_subject.removeprefix("dlq.")
    dead = MessageDeadLettered(
        consumer=spec.durable, stream=letter["Patchbay-Original-Stream"],
        sequence=int(letter["Patchbay-Original-Sequence"]),
        subject=letter["Patchbay-Original-Subject"], error=letter["Patchbay-Error"],
        dead_letter_sequence=parked_seq,
    )
    event = REGISTRY.envelope(
        dead, category=OPS_CATEGORY, stream_id=consumer, version=parked_seq,
        metadata=Metadata(correlation_id=(msg.headers or {}).get(CORRELATION_HEADER)),
    )
    try:
        await js.publish(event.subject, event.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": f"ops:{letter['Nats-Msg-Id']}"})
    except Exception as exc:
        log.warning("dead_letter_event_not_published", durable=spec.durable, error=str(exc))
