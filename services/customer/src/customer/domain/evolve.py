"""evolve(state, event) -> state: the only way state changes. Reporting folds with it too.

`evolve` reads an envelope (its typed event through the registry, old versions upcast);
`apply` takes the typed event itself, as the command path has it right after `decide`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shared.contracts.events import REGISTRY
from shared.envelope import EventEnvelope

from customer.domain import events as ev
from customer.domain.contacts import evolve_contacts
from customer.domain.erasure import evolve_erasure
from customer.domain.number_blocks import evolve_blocks
from customer.domain.payments import evolve_payments
from customer.domain.state import CARD_FIELDS, CustomerState, SettingsState


def evolve(state: CustomerState | None, event: EventEnvelope) -> CustomerState | None:
    """Apply one stored or published customer event to the state (None before creation)."""
    typed = REGISTRY.decode(event)
    if typed is None:
        # event types of later features leave this state as it is (but count as a version)
        return None if state is None else replace(state, version=event.version, updated_at=event.occurred_at)
    return apply(state, typed, stream_id=event.stream_id, version=event.version, at=event.occurred_at)


def apply(
    state: CustomerState | None, event: ev.Event, *, stream_id: str, version: int, at: datetime
) -> CustomerState | None:
    """Apply one typed customer event, stored as `version` of `stream_id` at `at`."""
    if isinstance(event, ev.CustomerCreated):
        fields = {name: getattr(event, name) for name in CARD_FIELDS}
        return CustomerState(id=stream_id, fields=fields, version=version, created_at=at, updated_at=at)
    if state is None:
        return None  # an event before creation cannot happen; ignore rather than crash a fold
    state = state.copy_with(version=version, updated_at=at)
    match event:
        case ev.CustomerUpdated(changes=changes):
            return state.with_fields(**{k: v["new"] for k, v in changes.items()})
        case ev.CustomerStatusChanged(new=new, until=until):
            return state.with_fields(status=new, penalty_until=until)
        case ev.CustomerDeleted():
            return replace(state, deleted=True)
        case ev.NumberBlockAssigned() | ev.NumberBlockReleased():
            return evolve_blocks(state, event)
        case ev.PaymentRecorded() | ev.PaymentStatusChanged():
            return evolve_payments(state, event, at)
        case _ if isinstance(event, ev.CONTACT_EVENTS):
            return evolve_contacts(state, event)
        case _ if isinstance(event, ev.ERASURE_EVENTS):
            return evolve_erasure(state, event)
    return state


def fold(events: list[EventEnvelope], state: CustomerState | None = None) -> CustomerState | None:
    """Fold a stream's events, in version order."""
    for event in events:
        state = evolve(state, event)
    return state


def evolve_settings(state: SettingsState, event: EventEnvelope) -> SettingsState:
    """Apply one stored settings event."""
    typed = REGISTRY.decode(event)
    return apply_settings(state, typed, event.version) if typed else replace(state, version=event.version)


def apply_settings(state: SettingsState, event: ev.Event, version: int) -> SettingsState:
    """Apply one typed settings event, stored as `version`."""
    match event:
        case ev.AuditSettingsChanged(changes=changes) if "require_reason" in changes:
            state = replace(state, require_reason=bool(changes["require_reason"]["new"]))
        case ev.NumberRangeSet(start=start, block_size=block_size, end=end):
            state = replace(state, number_range={"start": start, "block_size": block_size, "end": end},
                            number_range_version=state.number_range_version + 1)
    return replace(state, version=version)
