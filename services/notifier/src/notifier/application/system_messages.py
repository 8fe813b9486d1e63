"""System messages from the NOTIFY work queue: one delivery per notification id, however often it comes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import structlog
from nats.aio.msg import Msg
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.notify import SystemMessage
from shared.envelope import Metadata
from shared.ids import new_id
from shared.logging import bind_from_headers
from shared.secrets import Sealer

from notifier.adapters.delivery_store import DeliveryStore, NewDelivery, NewMessage
from notifier.application.templates import TemplateNotFound, render_system
from notifier.domain.rendering import UnknownPlaceholder

log = structlog.get_logger(__name__)

NAMESPACE = uuid.UUID("5d6c1f0e-6b1a-4d8e-9c1e-6e0f5b7a2c41")
NOTIFY_CONSUMER = ConsumerSpec(
    stream="NOTIFY",
    durable="notifier",
    # `notify.<channel>.<template>.<customer_id>`: one filter (a channel we do not serve is poison)
    filter_subjects=["notify.*.*.*"],
    max_deliver=10,
    backoff_s=[0.5, 2.0, 5.0, 15.0, 30.0],
)


def to_message(sm: SystemMessage, sealer: Sealer, metadata: Metadata) -> NewMessage:
    """A message of one delivery; Poison when it can never be rendered (unknown template, bad seal)."""
    try:
        secret = sealer.unseal(sm.sealed_secret) if sm.sealed_secret else None
        render_system(sm.template, sm.channel, sm.variables, secret)  # fails now, not at every attempt
    except (TemplateNotFound, UnknownPlaceholder, ValueError) as exc:
        raise Poison(f"system message {sm.notification_id} cannot be rendered: {exc}") from None
    message_id = uuid.uuid5(NAMESPACE, sm.notification_id)
    delivery = NewDelivery(
        delivery_id=new_id(),
        idempotency_key=f"system:{sm.notification_id}",
        recipient=sm.to,
        customer_id=sm.customer_id,
        contact_id=sm.contact_id,
        template=sm.template,
        variables=sm.variables,
        sealed_secret=sm.sealed_secret,
        sensitive=sm.sealed_secret is not None,
    )
    return NewMessage(
        message_id=message_id,
        kind="system",
        channel=sm.channel,
        metadata=metadata,
        deliveries=[delivery],
        template=sm.template,
    )


class SystemMessages:
    """The NOTIFY batch handler: validate, queue (idempotently), wake the senders."""

    def __init__(self, *, store: DeliveryStore, sealer: Sealer, wake: Callable[[], None]) -> None:
        self.store = store
        self.sealer = sealer
        self.wake = wake
        self.queued = 0

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """Queue a batch in one transaction; a duplicate notification id is a no-op."""
        batch = []
        for msg in msgs:
            ids = bind_from_headers(msg.headers)
            sm = SystemMessage.model_validate_json(msg.data)
            batch.append(to_message(sm, self.sealer, Metadata(correlation_id=ids.get("correlation_id"))))
        if not batch:  # an idle poll: nothing happened, nothing to say at info level
            log.debug("system_messages_queued", count=0)
            return
        await self.store.queue_many(batch)
        self.queued += len(batch)
        self.wake()
        log.info(
            "system_messages_queued", count=len(batch), templates=sorted({m.template or "" for m in batch})
        )
