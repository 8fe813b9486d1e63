"""Given typed events, when a command, then typed events: and the wire data is as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from customer.domain import contacts as contact_rules
from customer.domain import events as ev
from customer.domain.decide import decide_create, decide_delete, decide_set_status, decide_update
from customer.domain.evolve import apply, evolve, fold
from customer.domain.state import CustomerState
from shared.contracts.contacts import ContactCreate
from shared.contracts.customer import CustomerCreate, CustomerPatch
from shared.contracts.events import REGISTRY
from shared.envelope import EventEnvelope

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def stored(*events: ev.Event) -> list[EventEnvelope]:
    return [REGISTRY.envelope(e, category="customer", stream_id="c1", version=i + 1, occurred_at=NOW)
            for i, e in enumerate(events)]


def given(*events: ev.Event) -> CustomerState:
    state = fold(stored(*events))
    assert state is not None
    return state


def test_create_is_a_typed_event_whose_data_is_the_create_as_before() -> None:
    create = CustomerCreate(name="Acme", paypal_email="pay@acme.example", address={"line1": "1 Road"})
    [event] = decide_create(create, NOW)
    assert isinstance(event, ev.CustomerCreated) and event.address["line1"] == "1 Road"
    assert REGISTRY.dump(event) == ("CustomerCreated", 1, create.model_dump(mode="json"))


def test_given_a_customer_when_updated_then_customer_updated_with_old_and_new() -> None:
    created = decide_create(CustomerCreate(name="Acme", channels=1), NOW)[0]
    events = decide_update(given(created), CustomerPatch(channels=4, name="Acme"))
    assert events == [ev.CustomerUpdated(changes={"channels": {"old": 1, "new": 4}})]


def test_given_a_customer_when_penalised_then_status_changed_until_then() -> None:
    created = decide_create(CustomerCreate(name="Acme"), NOW)[0]
    until = NOW + timedelta(days=1)
    [event] = decide_set_status(given(created), "penalty", until, NOW)
    assert event == ev.CustomerStatusChanged(old="active", new="penalty", until=until.isoformat(), old_until=None)
    after = given(created, event)
    assert (after.status, after.fields["penalty_until"], after.version) == ("penalty", until.isoformat(), 2)


def test_given_a_contact_when_the_customer_is_deleted_then_customer_deleted() -> None:
    created = decide_create(CustomerCreate(name="Acme"), NOW)[0]
    fields = ContactCreate(name="Ann", email="ann@example.com").model_dump(mode="json")
    [added] = contact_rules.decide_add_contact(given(created), "k1", fields, "generated", None)
    assert isinstance(added, ev.ContactAdded) and added.contact["id"] == "k1"
    assert decide_delete(given(created, added)) == [ev.CustomerDeleted(name="Acme")]
    assert given(created, added).contacts[0]["email"] == "ann@example.com"


def test_evolve_of_a_stored_envelope_and_apply_of_the_typed_event_agree() -> None:
    created = decide_create(CustomerCreate(name="Acme"), NOW)[0]
    [changed] = decide_update(given(created), CustomerPatch(tags=["gold"]))
    by_envelopes = fold(stored(created, changed))
    state = apply(None, created, stream_id="c1", version=1, at=NOW)
    assert apply(state, changed, stream_id="c1", version=2, at=NOW) == by_envelopes


def test_an_event_type_of_a_later_feature_only_moves_the_version() -> None:
    state = given(decide_create(CustomerCreate(name="Acme"), NOW)[0])
    later = EventEnvelope(type="CustomerInvoiced", category="customer", stream_id="c1", version=2,
                          occurred_at=NOW, data={"amount": "1"})
    after = evolve(state, later)
    assert after is not None and after.version == 2 and after.fields == state.fields
