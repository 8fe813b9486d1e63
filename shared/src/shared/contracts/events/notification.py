"""Events of the notifier, on NOTIFICATION_EVENTS (`events.notification.<id>.<Type>`).

Never a body, never a secret: settings events say whether the secret changed, not what it is.
"""

from __future__ import annotations

from typing import Annotated, Any

from shared.contracts.events.base import PERSONAL, Event, register

NOTIFICATION_CATEGORY = "notification"


class DeliveryEvent(Event):
    """One delivery's outcome; `to` is the recipient's address (personal)."""

    delivery_id: str
    message_id: str
    customer_id: str | None
    contact_id: str | None
    channel: str
    to: Annotated[str, PERSONAL]
    template: str | None
    subject: str | None
    attempts: int


@register("DeliverySent")
class DeliverySent(DeliveryEvent):
    """The provider took the message (`unconfirmed`: it answered too late to be sure)."""

    provider_id: str | None
    unconfirmed: bool


@register("DeliveryRetrying")
class DeliveryRetrying(DeliveryEvent):
    """A failure worth retrying; the next try is in `retry_in_s` seconds."""

    error: str | None
    retry_in_s: float


@register("DeliveryFailed")
class DeliveryFailed(DeliveryEvent):
    """The delivery gave up (`dead_lettered`: parked for an operator)."""

    error: str | None
    dead_lettered: bool


@register("MessageQueued")
class MessageQueued(Event):
    """An operator's broadcast was accepted."""

    message_id: str
    channel: str
    subject: str | None
    recipients: int
    skipped: int


class ChannelSettingsChanged(Event):
    """A channel's settings (the secret itself never: only whether it changed)."""

    settings: dict[str, Any]
    secret_changed: bool


@register("EmailSettingsChanged")
class EmailSettingsChanged(ChannelSettingsChanged):
    """The SMTP settings changed."""


@register("SmsSettingsChanged")
class SmsSettingsChanged(ChannelSettingsChanged):
    """The SMS provider settings changed."""


DELIVERY_OUTCOMES: dict[str, type[DeliveryEvent]] = {
    "sent": DeliverySent, "queued": DeliveryRetrying, "failed": DeliveryFailed,
}
