"""Typed events of every producing service, registered by name (see base.py).

Importing this package registers every event type in `REGISTRY`.
"""

from __future__ import annotations

from shared.contracts.events import (
    alerts,
    billing,
    customer,
    notification,
    ops,
    payments,
    signup,
    verification,
)
from shared.contracts.events.base import (
    PERSONAL,
    REGISTRY,
    Event,
    EventRegistry,
    Personal,
    PersonalKeys,
    UnknownEvent,
    personal_fields,
    register,
)

__all__ = [
    "PERSONAL", "REGISTRY", "Event", "EventRegistry", "Personal", "PersonalKeys", "UnknownEvent",
    "alerts", "billing", "customer", "notification", "ops", "payments", "personal_fields", "register",
    "signup", "verification",
]
