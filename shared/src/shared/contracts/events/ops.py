"""Operational events, on OPS_EVENTS (`events.ops.<consumer>.<Type>`): for alerting and operators."""

from __future__ import annotations

from shared.contracts.events.base import Event, register

OPS_CATEGORY = "ops"


@register("MessageDeadLettered")
class MessageDeadLettered(Event):
    """A consumer parked a message it could not handle (the error event of a dead letter)."""

    consumer: str
    stream: str
    sequence: int
    subject: str
    error: str
    dead_letter_sequence: int
