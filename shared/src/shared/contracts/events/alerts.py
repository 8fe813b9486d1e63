"""Alert events, on ALERT_EVENTS (`events.alert.<customer_id>.<Type>`), written by the alerts service."""

from __future__ import annotations

from shared.contracts.events.base import Event, register

ALERT_CATEGORY = "alert"


@register("AlertFired")
class AlertFired(Event):
    """A rule crossed for a customer: the value, the threshold, and what was done (money as text)."""

    firing_id: str
    alert_id: str
    alert_name: str
    customer_id: str
    area: str
    operator: str
    value: str
    threshold: str
    level: str
    actions: list[str]
    reason: str
    event_at: str
