"""evolve(state, event) -> state: the only way state changes. Reporting folds with it too."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.envelope import EventEnvelope

from customer.domain import events as ev
from customer.domain.contacts import evolve_contacts
from customer.domain.number_blocks import evolve_blocks
from customer.domain.state import CARD_FIELDS, CustomerState, SettingsState


def evolve(state: CustomerState | None, event: EventEnvelope) -> CustomerState | None:
    """Apply one customer event to the state (None before creation)."""
    data = ev.upcast(event.type, event.schema_version, event.data)
    if event.type == ev.CUSTOMER_CREATED:
        fields = {name: data[name] for name in CARD_FIELDS}
        return CustomerState(
            id=event.stream_id, fields=fields, version=event.version,
            created_at=event.occurred_at, updated_at=event.occurred_at,
        )
    if state is None:
        return None  # an event before creation cannot happen; ignore rather than crash a fold
    state = replace(state, version=event.version, updated_at=event.occurred_at)
    if event.type == ev.CUSTOMER_UPDATED:
        return state.with_fields(**{k: v["new"] for k, v in data["changes"].items()})
    if event.type == ev.CUSTOMER_STATUS_CHANGED:
        return state.with_fields(status=data["new"], penalty_until=data.get("until"))
    if event.type == ev.CUSTOMER_DELETED:
        return replace(state, deleted=True)
    if event.type in ev.CONTACT_EVENTS:
        return evolve_contacts(state, event.type, data)
    if event.type in ev.NUMBER_BLOCK_EVENTS:
        return evolve_blocks(state, event.type, data)
    return state  # event types of later features leave this state as it is


def fold(events: list[EventEnvelope], state: CustomerState | None = None) -> CustomerState | None:
    """Fold a stream's events, in version order."""
    for event in events:
        state = evolve(state, event)
    return state


def evolve_settings(state: SettingsState, event: EventEnvelope) -> SettingsState:
    """Apply one settings event."""
    if event.type == ev.AUDIT_SETTINGS_CHANGED:
        changes: dict[str, Any] = event.data["changes"]
        if "require_reason" in changes:
            state = replace(state, require_reason=bool(changes["require_reason"]["new"]))
    if event.type == ev.NUMBER_RANGE_SET:
        state = replace(state, number_range={k: event.data[k] for k in ("start", "block_size", "end")})
    return replace(state, version=event.version)
