"""The typed-event registry: names and versions, upcasting, the wire data, the personal marks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from shared.contracts.events import REGISTRY, Event, EventRegistry, UnknownEvent, personal_fields
from shared.contracts.events.customer import ContactAdded, CustomerStatusChanged
from shared.envelope import EventEnvelope

CONTACT = {
    "id": "k1", "name": "Ann", "email": "ann@example.com", "mobile": None, "phone": None,
    "contact_type": "general", "public_notes": "", "private_notes": "", "ip_whitelist": [],
    "email_verified": False, "mobile_verified": False,
}
# data exactly as stored before typed events (type -> data)
STORED: dict[str, dict[str, Any]] = {
    "CustomerStatusChanged": {"old": "active", "new": "penalty", "until": "2026-01-02T00:00:00+00:00",
                              "old_until": None},
    "CustomerDeleted": {"name": "Acme"},
    "CustomerUpdated": {"changes": {"channels": {"old": 0, "new": 5}}},
    "ContactAdded": {"contact": CONTACT, "password": "generated"},
    "CliApproved": {"number": "+14155550123", "method": "operator", "contact_id": None},
    "NumberBlockAssigned": {"id": "b1", "index": 0, "start": 1000, "end": 1099},
    "NumberRangeSet": {"start": 1000, "block_size": 100, "end": None, "old": None},
    "EmailVerified": {"customer_id": "c1", "contact_id": "k1", "channel": "email",
                      "verification_id": "v1", "target": "ann@example.com"},
    "InvoiceGenerated": {"id": "i1", "number": 3, "customer_id": "c1", "currency": "EUR", "tax_rate": "0.2",
                         "lines": [{"day": "2026-01-01", "attempts": 4, "connected": 3,
                                    "billed_duration_s": 360, "amount": "1.50"}],
                         "subtotal": "1.50", "tax": "0.30", "total": "1.80", "period_from": "2026-01-01",
                         "period_to": "2026-01-01", "created_at": "2026-01-02T00:00:00Z"},
    "MessageDeadLettered": {"consumer": "reporting-audit", "stream": "CUSTOMER_EVENTS", "sequence": 7,
                            "subject": "events.customer.c1.CustomerCreated", "error": "boom",
                            "dead_letter_sequence": 1},
    "DeliveryFailed": {"delivery_id": "d1", "message_id": "m1", "customer_id": None, "contact_id": None,
                       "channel": "email", "to": "ann@example.com", "template": "verify",
                       "subject": None, "attempts": 3, "error": "refused", "dead_lettered": True},
}


@pytest.mark.parametrize("name", sorted(STORED))
def test_stored_data_reads_and_writes_back_unchanged(name: str) -> None:
    event = REGISTRY.load(name, 1, STORED[name])
    assert type(event).TYPE == name
    assert REGISTRY.dump(event) == (name, 1, STORED[name])


def test_an_envelope_decodes_to_its_typed_event_and_back() -> None:
    envelope = EventEnvelope(type="ContactAdded", category="customer", stream_id="c1", version=2,
                             data=STORED["ContactAdded"])
    event = REGISTRY.decode(envelope)
    assert isinstance(event, ContactAdded) and event.contact["email"] == "ann@example.com"
    again = REGISTRY.envelope(event, category="customer", stream_id="c1", version=2)
    assert again.type == envelope.type and again.data == envelope.data and again.schema_version == 1


def test_events_are_frozen_and_ignore_keys_they_do_not_know() -> None:
    event = CustomerStatusChanged.model_validate(STORED["CustomerStatusChanged"] | {"later": 1})
    assert "later" not in REGISTRY.dump(event)[2]
    with pytest.raises(ValidationError):
        event.new = "active"  # type: ignore[misc]


def test_missing_or_mistyped_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        REGISTRY.load("CustomerDeleted", 1, {})
    with pytest.raises(ValidationError):
        REGISTRY.load("NumberBlockAssigned", 1, {"id": "b1", "index": "first", "start": 1, "end": 2})


def test_an_unknown_type_is_none_when_decoded_and_an_error_when_loaded() -> None:
    envelope = EventEnvelope(type="SomethingLater", category="customer", stream_id="c1", version=1)
    assert REGISTRY.decode(envelope) is None
    with pytest.raises(UnknownEvent):
        REGISTRY.load("SomethingLater", 1, {})


def _split_name(data: dict[str, Any]) -> dict[str, Any]:
    first, _, last = data.pop("name").partition(" ")
    return data | {"first_name": first, "last_name": last}


def test_a_v1_event_is_upcast_to_v2_on_read() -> None:
    registry = EventRegistry()

    @registry.register("PersonNamed", version=2, upcasters={1: _split_name})
    class PersonNamed(Event):
        first_name: str
        last_name: str

    old = registry.load("PersonNamed", 1, {"name": "Ada Lovelace"})
    assert old == PersonNamed(first_name="Ada", last_name="Lovelace")
    assert registry.dump(old) == ("PersonNamed", 2, {"first_name": "Ada", "last_name": "Lovelace"})
    assert registry.load("PersonNamed", 2, {"first_name": "Ada", "last_name": "L"}).last_name == "L"


def test_a_new_version_without_its_upcaster_is_refused() -> None:
    registry = EventRegistry()
    with pytest.raises(ValueError, match="no upcaster"):
        registry.register("PersonNamed", version=3, upcasters={1: _split_name})


def test_a_name_is_registered_once() -> None:
    registry = EventRegistry()
    registry.register("Twice")(type("A", (Event,), {"__annotations__": {}}))
    with pytest.raises(ValueError, match="twice"):
        registry.register("Twice")(type("B", (Event,), {"__annotations__": {}}))


CONTACT_MARKS = {"name", "email", "mobile", "phone", "public_notes", "private_notes", "ip_whitelist"}
EXPECTED_PERSONAL = {
    "CustomerCreated": {"paypal_email", "address.line1", "address.line2"},
    "CustomerUpdated": {"changes.paypal_email", "changes.address.line1", "changes.address.line2"},
    "ContactAdded": {f"contact.{m}" for m in CONTACT_MARKS},
    "ContactUpdated": {f"changes.{m}" for m in CONTACT_MARKS},
    "ContactRemoved": {"name", "email"},
    "ContactEmailVerified": {"email"},
    "ContactMobileVerified": {"mobile"},
    "VerificationCodeSent": {"target"},
    "EmailVerified": {"target"},
    "MobileVerified": {"target"},
    "CliVerified": {"target"},
    "DeliverySent": {"to"},
    "DeliveryRetrying": {"to"},
    "DeliveryFailed": {"to"},
    "PaymentRecorded": {"payer_email"},
}


def test_personal_fields_are_marked_in_the_models() -> None:
    marked = {cls.TYPE: personal_fields(cls) for cls in REGISTRY if personal_fields(cls)}
    assert marked == EXPECTED_PERSONAL
