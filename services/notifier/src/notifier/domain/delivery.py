"""One recipient's delivery, and the events that record what became of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts.events import REGISTRY
from shared.contracts.events.notification import DELIVERY_OUTCOMES, MessageQueued
from shared.envelope import EventEnvelope, Metadata

CATEGORY = "notification"


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery, as a sender needs it."""

    delivery_id: UUID
    message_id: UUID
    channel: str
    recipient: str
    attempts: int
    event_version: int
    customer_id: UUID | None = None
    contact_id: UUID | None = None
    subject: str | None = None
    body: str | None = None
    template: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    sealed_secret: str | None = None
    sensitive: bool = False
    metadata: Metadata = field(default_factory=Metadata)
    created_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    """What to write for one delivery after an attempt."""

    delivery: Delivery
    state: str  # queued (retry) | sent | failed
    error: str | None = None
    provider_id: str | None = None
    retry_in_s: float = 0.0
    dead_letter: bool = False
    unconfirmed: bool = False
    attempts: int | None = None  # None: keep the count


EVENT_TYPES = {state: cls.TYPE for state, cls in DELIVERY_OUTCOMES.items()}


def outcome_event(rec: Recorded) -> EventEnvelope:
    """The NOTIFICATION_EVENTS fact for one outcome (never a body, never a secret)."""
    d = rec.delivery
    data: dict[str, Any] = {
        "delivery_id": str(d.delivery_id),
        "message_id": str(d.message_id),
        "customer_id": str(d.customer_id) if d.customer_id else None,
        "contact_id": str(d.contact_id) if d.contact_id else None,
        "channel": d.channel,
        "to": d.recipient,
        "template": d.template,
        "subject": None if d.sensitive else d.subject,
        "attempts": rec.attempts if rec.attempts is not None else d.attempts,
    }
    if rec.state == "sent":
        data |= {"provider_id": rec.provider_id, "unconfirmed": rec.unconfirmed}
    else:
        data |= {"error": rec.error}
    if rec.state == "queued":
        data["retry_in_s"] = round(rec.retry_in_s, 3)
    if rec.state == "failed":
        data["dead_lettered"] = rec.dead_letter
    return REGISTRY.envelope(
        DELIVERY_OUTCOMES[rec.state].model_validate(data),
        category=CATEGORY,
        stream_id=str(d.delivery_id),
        version=d.event_version + 1,
        metadata=d.metadata,
    )


def message_queued_event(
    *,
    message_id: UUID,
    channel: str,
    subject: str | None,
    recipients: int,
    skipped: int,
    metadata: Metadata,
) -> EventEnvelope:
    """The fact that an operator's broadcast was accepted."""
    event = MessageQueued(
        message_id=str(message_id), channel=channel, subject=subject, recipients=recipients,
        skipped=skipped,
    )
    return REGISTRY.envelope(
        event, category=CATEGORY, stream_id=str(message_id), version=1, metadata=metadata,
    )
