"""Contacts, verification outcomes, approved CLIs and dial views: given events, when a command, then."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from customer.application.portal import check_access, ip_allowed
from customer.domain import contacts as rules
from customer.domain import events as ev
from customer.domain.decide import decide_create
from customer.domain.evolve import fold
from customer.domain.state import CustomerState
from customer.entrypoints.dial_api import answer_request
from customer.projections.dial_views import DialViews, make_view
from pydantic import ValidationError
from shared.contracts.contacts import CONTACT_KEYS, AddContact, ContactCreate, ContactPatch
from shared.contracts.customer import CustomerCreate
from shared.contracts.events import REGISTRY
from shared.errors import ErrorCode, ServiceError

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def given(*drafts: ev.Event) -> CustomerState:
    events = [
        REGISTRY.envelope(d, category="customer", stream_id="c1", version=i + 1, occurred_at=NOW)
        for i, d in enumerate(drafts)
    ]
    state = fold(events)
    assert state is not None
    return state


def created(**fields: object) -> ev.Event:
    return decide_create(CustomerCreate(name="Acme", **fields), NOW)[0]  # type: ignore[arg-type]


def contact_fields(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "Ann", "email": "ann@example.com"}
    return ContactCreate(**(base | fields)).model_dump(mode="json")  # type: ignore[arg-type]


def added(state: CustomerState, contact_id: str = "k1", **fields: object) -> ev.Event:
    [draft] = rules.decide_add_contact(state, contact_id, contact_fields(**fields), "generated", None)
    return draft


def test_a_contact_has_exactly_the_card_keys_and_the_event_no_password() -> None:
    state = given(created())
    draft = added(state, mobile="+44 20 7946 0000", ip_whitelist=["10.0.0.1/8"])
    assert isinstance(draft, ev.ContactAdded) and draft.password == "generated"
    after = given(created(), draft)
    [contact] = after.card()["contacts"]
    assert tuple(contact) == CONTACT_KEYS
    assert contact["mobile"] == "+442079460000" and contact["ip_whitelist"] == ["10.0.0.0/8"]
    assert contact["contact_type"] == "general" and contact["email_verified"] is False


def test_contact_fields_are_validated() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactCreate(name="", email="nope", mobile="12", ip_whitelist=["300.1.1.1"])  # type: ignore[call-arg]
    fields = {e["loc"][0] for e in exc.value.errors()}
    assert fields == {"name", "email", "mobile", "ip_whitelist"}
    with pytest.raises(ValidationError, match="at least 12 characters"):
        AddContact(customer_id="018f0000-0000-7000-8000-000000000000",  # type: ignore[arg-type]
                   contact=ContactCreate(name="a", email="a@example.com"), password="short")  # type: ignore[arg-type]


def test_the_same_email_twice_in_one_card_is_taken() -> None:
    state = given(created(), added(given(created())))
    with pytest.raises(ServiceError) as exc:
        rules.decide_add_contact(state, "k2", contact_fields(email="ANN@example.com"), "operator", None)
    assert exc.value.code == ErrorCode.EMAIL_TAKEN


def test_notes_holding_the_password_are_refused() -> None:
    state = given(created())
    fields = contact_fields(private_notes="pw is Secret-Password-1 ok")
    with pytest.raises(ServiceError) as exc:
        rules.decide_add_contact(state, "k1", fields, "operator", lambda t: "secret-password-1" in t.lower())
    assert exc.value.code == ErrorCode.PASSWORD_IN_NOTES
    assert exc.value.details[0].field == "private_notes"
    with_contact = given(created(), added(state, public_notes="call after 5"))
    with pytest.raises(ServiceError) as in_notes:
        rules.decide_set_password(with_contact, "k1", "operator", lambda t: "after" in t)
    assert in_notes.value.code == ErrorCode.PASSWORD_IN_NOTES


def test_update_records_old_and_new_and_a_new_email_is_unverified_again() -> None:
    state = given(created(), added(given(created()), email_verified=True))
    patch = ContactPatch(email="ann2@example.com", phone="123").model_dump(
        mode="json", exclude_unset=True)
    [draft] = rules.decide_update_contact(state, "k1", patch)
    assert draft.changes == {
        "email": {"old": "ann@example.com", "new": "ann2@example.com"},
        "phone": {"old": None, "new": "123"},
        "email_verified": {"old": True, "new": False},
    }
    assert rules.decide_update_contact(state, "k1", {"phone": None}) == []
    with pytest.raises(ServiceError) as exc:
        rules.decide_update_contact(state, "k1", {"name": None})
    assert exc.value.code == ErrorCode.VALIDATION
    with pytest.raises(ServiceError) as missing:
        rules.decide_update_contact(state, "nope", {"phone": "1"})
    assert missing.value.code == ErrorCode.NOT_FOUND


def test_verification_applies_only_to_the_current_email_once() -> None:
    base = given(created())
    state = given(created(), added(base, mobile="+14155550123"))
    assert rules.decide_verified(state, "k1", "email", "old@example.com", "v1") == []
    [draft] = rules.decide_verified(state, "k1", "email", "ann@example.com", "v1")
    [mobile] = rules.decide_verified(state, "k1", "mobile", "+14155550123", "v2")
    after = given(created(), added(base, mobile="+14155550123"), draft, mobile)
    assert after.contacts[0]["email_verified"] and after.contacts[0]["mobile_verified"]
    assert rules.decide_verified(after, "k1", "email", "ann@example.com", "v3") == []


def test_clis_approved_by_test_call_or_operator_and_removed() -> None:
    state = given(created())
    [call] = rules.decide_verified(state, "k1", "cli", "+14155550123", "v1")
    assert REGISTRY.dump(call)[2] == {"number": "+14155550123", "method": "test_call", "contact_id": "k1"}
    [op] = rules.decide_approve_cli(state, "+14155550100", "operator")
    after = given(created(), call, op)
    assert after.card()["approved_clis"] == ["+14155550100", "+14155550123"]
    assert rules.decide_approve_cli(after, "+14155550100", "operator") == []
    [removed] = rules.decide_remove_cli(after, "+14155550100")
    assert given(created(), call, op, removed).approved_clis == ("+14155550123",)
    with pytest.raises(ServiceError) as exc:
        rules.decide_remove_cli(state, "+14155550100")
    assert exc.value.code == ErrorCode.NOT_FOUND


def test_removing_a_contact_takes_it_off_the_card() -> None:
    base = given(created())
    state = given(created(), added(base))
    [removed] = rules.decide_remove_contact(state, "k1")
    assert REGISTRY.dump(removed)[2] == {"contact_id": "k1", "name": "Ann", "email": "ann@example.com"}
    assert given(created(), added(base), removed).contacts == ()


def reply(index: DialViews, customer_id: str, cli: str | None = None, now: datetime = NOW) -> dict[str, object]:
    return dict(json.loads(index.answer(customer_id, cli, now.timestamp())))


def test_dial_permission_lists_every_reason_and_the_limits() -> None:
    until = (NOW + timedelta(hours=1)).isoformat()
    verification = {"email_required": True, "mobile_required": True, "approved_clis_only": True}
    state = given(created(status="penalty", penalty_until=until, verification=verification, channels=5,
                          cps="2.5", debit_limit="-10"))
    index = DialViews()
    index.apply_state("c1", state)
    answer = reply(index, "c1", "+14155550123", now=NOW)
    assert answer == {
        "allowed": False,
        "reasons": ["penalty", "email_unverified", "mobile_unverified", "cli_not_approved",
                    "insufficient_credit"],
        "limits": {"channels": 5, "cps": "2.5", "debit_limit": "-10"},
        "penalty_until": state.fields["penalty_until"],
        "credit": {"balance": "0.00", "available": "-10.00", "currency": "USD"},
    }
    later = reply(index, "c1", "+14155550123", now=NOW + timedelta(hours=2))
    assert later["reasons"] == ["email_unverified", "mobile_unverified", "cli_not_approved",
                                "insufficient_credit"]
    assert reply(index, "nope") == {"allowed": False, "reasons": ["not_found"], "limits": None,
                                    "penalty_until": None, "credit": None}


def test_dial_permission_allowed_once_verified_and_versions_only_go_forward() -> None:
    verification = {"email_required": True, "approved_clis_only": True}
    base = given(created(verification=verification, debit_limit="50"))
    contact = added(base)
    verified = rules.decide_verified(given(created(verification=verification, debit_limit="50"), contact), "k1",
                                     "email", "ann@example.com", "v1")[0]
    cli = rules.decide_verified(base, "k1", "cli", "+14155550123", "v2")[0]
    state = given(created(verification=verification, debit_limit="50"), contact, verified, cli)
    index = DialViews()
    index.apply_state("c1", state)
    assert reply(index, "c1", "14155550123")["allowed"] is True
    assert reply(index, "c1", "+14155550999")["reasons"] == ["cli_not_approved"]
    assert reply(index, "c1")["reasons"] == ["cli_not_approved"]
    index.apply_state("c1", base)  # an older version arrives late: ignored
    assert reply(index, "c1", "+14155550123")["allowed"] is True
    deleted = make_view({**state.fields, "status": "inactive"}, True, [], [], state.version + 1)
    index.put("c1", deleted)
    assert reply(index, "c1")["reasons"] == ["deleted", "inactive", "email_unverified", "cli_not_approved"]


def test_malformed_dial_requests_get_a_validation_error() -> None:
    index = DialViews()
    for data in (b"nope", b"[]", b'{"customer_id": 5}', b'{"customer_id": "not-a-uuid"}', b"{}"):
        assert json.loads(answer_request(index, data, 0))["error"]["code"] == "validation_error"
    upper = "018F0000-0000-7000-8000-000000000000"
    assert json.loads(answer_request(index, json.dumps({"customer_id": upper}).encode(), 0))["reasons"] == [
        "not_found"]


def test_portal_access_rules() -> None:
    card = {"status": "active", "portal_access": True,
            "contacts": [{"id": "k1", "ip_whitelist": ["203.0.113.0/24"]}]}
    assert check_access(card, False, "k1", "203.0.113.9")["id"] == "k1"
    for changed, deleted, ip, code in (
        ({}, False, "198.51.100.1", ErrorCode.FORBIDDEN), ({"status": "inactive"}, False, "203.0.113.9",
                                                         ErrorCode.FORBIDDEN),
        ({"portal_access": False}, False, "203.0.113.9", ErrorCode.FORBIDDEN),
        ({}, True, "203.0.113.9", ErrorCode.FORBIDDEN), ({"contacts": []}, False, "203.0.113.9",
                                                        ErrorCode.UNAUTHENTICATED),
    ):
        with pytest.raises(ServiceError) as exc:
            check_access(card | changed, deleted, "k1", ip)
        assert exc.value.code == code
    assert ip_allowed([], None) and not ip_allowed(["10.0.0.0/8"], None)
    assert ip_allowed(["10.0.0.0/8"], "::ffff:10.1.2.3") and ip_allowed(["2001:db8::/32"], "2001:db8::1")
