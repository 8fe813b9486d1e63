"""Sign-up settings of the customer service (stream `signup`, on CUSTOMER_EVENTS)."""

from __future__ import annotations

from shared.contracts.events.base import Event, register
from shared.contracts.events.customer import Change


@register("SignupSettingsChanged")
class SignupSettingsChanged(Event):
    """Sign-up was turned on or off, or its currencies changed."""

    changes: dict[str, Change]
