"""Properties of decide/evolve: any sequence of commands gives one state, whichever way it is folded.

The command path applies typed events; a replay, as-of and reporting fold stored envelopes (read
back from JSON); the audit log shows each event's diff. They must agree, event by event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from customer.domain import events as ev
from customer.domain.decide import decide_create, decide_delete, decide_set_status, decide_update
from customer.domain.evolve import apply, fold
from customer.domain.state import CustomerState
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from reporting.domain.audit import diff_of
from shared.contracts.customer import CustomerCreate, CustomerPatch
from shared.contracts.events import REGISTRY
from shared.envelope import EventEnvelope
from shared.errors import ServiceError

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
STATUS_FIELDS = {"status": "status", "until": "penalty_until"}  # CustomerStatusChanged's names on the card
words = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), min_size=1, max_size=12)
patches = st.fixed_dictionaries({}, optional={
    "name": words, "channels": st.integers(0, 500), "notes": st.text(max_size=20),
    "cps": st.decimals(min_value=0, max_value=100, places=2, allow_nan=False).map(str),
    "tax": st.decimals(min_value=0, max_value=30, places=1, allow_nan=False).map(str),
    "tags": st.lists(words, max_size=3), "address": st.fixed_dictionaries({}, optional={"city": words}),
    "debit_limit": st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False).map(str),
})
commands = st.lists(st.one_of(
    st.tuples(st.just("update"), patches),
    st.tuples(st.just("status"), st.sampled_from(["active", "inactive", "penalty"])),
    st.tuples(st.just("delete"), st.none()),
), max_size=12)


def decided(state: CustomerState, kind: str, arg: Any, at: datetime) -> list[ev.Event]:
    """The events of one command, or none when the rules refuse it."""
    try:
        if kind == "update":
            return decide_update(state, CustomerPatch.model_validate(arg))
        if kind == "status":
            return decide_set_status(state, arg, at + timedelta(hours=1) if arg == "penalty" else None, at)
        return decide_delete(state) if not state.deleted else []
    except (ServiceError, ValidationError):
        return []


def stored(event: ev.Event, version: int, at: datetime) -> EventEnvelope:
    """The event as the store keeps it and a reader gets it back: through JSON."""
    envelope = REGISTRY.envelope(event, category="customer", stream_id="c1", version=version, occurred_at=at)
    return EventEnvelope.model_validate_json(envelope.model_dump_json())


def plain(value: Any) -> Any:
    """One spelling for comparing JSON values (numbers as Decimal)."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal, parse_int=Decimal)


@given(words, commands)
def test_the_command_path_a_replay_as_of_and_the_audit_diff_agree(name: str, script: list[tuple[str, Any]]) -> None:
    at = NOW
    [first] = decide_create(CustomerCreate(name=name), at)
    state = apply(None, first, stream_id="c1", version=1, at=at)
    assert state is not None
    history = [(stored(first, 1, at), state)]
    for kind, arg in script:
        at += timedelta(minutes=1)
        for event in decided(state, kind, arg, at):
            after = apply(state, event, stream_id="c1", version=state.version + 1, at=at)
            assert after is not None
            history.append((stored(event, after.version, at), after))
            state = after
    envelopes = [envelope for envelope, _ in history]
    for k, (envelope, expected) in enumerate(history, start=1):
        as_of = fold(envelopes[:k])  # as-of: the events up to that instant, read back from storage
        assert as_of is not None and as_of.card() == expected.card() and as_of.deleted == expected.deleted
        before = history[k - 2][1].card() if k > 1 else None
        assert_diff_matches(envelope, before, expected.card())


def assert_diff_matches(envelope: EventEnvelope, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """The audit log's diff of one event is exactly what changed on the card."""
    changes, _ = diff_of(envelope.type, envelope.data)
    if before is None:  # created: every field is new
        for field, change in changes.items():
            if field in after:
                assert plain(change["new"]) == plain(after[field]), field
        return
    if envelope.type == "CustomerDeleted":
        assert {k: v for k, v in before.items() if k not in ("version", "updated_at", "deleted")} == {
            k: v for k, v in after.items() if k not in ("version", "updated_at", "deleted")}
        return
    names = STATUS_FIELDS if envelope.type == "CustomerStatusChanged" else {f: f for f in changes}
    for field, change in changes.items():
        card_field = names[field]
        assert plain(change["old"]) == plain(before[card_field]), (field, change, before[card_field])
        assert plain(change["new"]) == plain(after[card_field]), (field, change, after[card_field])
    untouched = set(after) - {names[f] for f in changes} - {"version", "updated_at"}
    assert {k: before[k] for k in untouched} == {k: after[k] for k in untouched}
