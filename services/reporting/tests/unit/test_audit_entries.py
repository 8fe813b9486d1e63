"""Audit entries from events: actions, diffs, customer ids, secrets removed."""

from __future__ import annotations

from reporting.domain.audit import action_of, diff_of, entry_of, redact
from shared.envelope import Actor, EventEnvelope, Metadata


def test_actions_come_from_the_type_name() -> None:
    assert action_of("CustomerCreated") == "created"
    assert action_of("CustomerStatusChanged") == "status changed"
    assert action_of("ContactAdded") == "contact added"
    assert action_of("PasswordReset") == "password reset"
    assert action_of("InvoiceIssued") == "invoice issued"
    assert action_of("AuditSettingsChanged") == "audit settings changed"


def test_changes_are_taken_as_old_and_new() -> None:
    changes, data = diff_of("CustomerUpdated", {"changes": {"name": {"old": "a", "new": "b"}}})
    assert changes == {"name": {"old": "a", "new": "b"}} and data is None


def test_status_change_diffs_status_and_its_until() -> None:
    changes, _ = diff_of("CustomerStatusChanged", {
        "old": "active", "new": "penalty", "until": "2030-01-01T00:00:00Z", "old_until": None})
    assert changes == {"status": {"old": "active", "new": "penalty"},
                       "until": {"old": None, "new": "2030-01-01T00:00:00Z"}}


def test_created_shows_every_field_as_new() -> None:
    changes, data = diff_of("CustomerCreated", {"name": "x", "tax": "5"})
    assert changes == {"name": {"old": None, "new": "x"}, "tax": {"old": None, "new": "5"}}
    assert data is None


def test_other_events_keep_their_data_without_secrets() -> None:
    changes, data = diff_of("VerificationSucceeded", {
        "customer_id": "c", "channel": "email", "code": "123456",
        "contact": {"password_hash": "$argon2...", "email": "a@b.c", "api_key": "k"},
        "auth_token": "t", "smtp_password": "p", "address": {"postcode": "10115"},
    })
    assert changes == {}
    assert data == {"customer_id": "c", "channel": "email", "contact": {"email": "a@b.c"},
                    "address": {"postcode": "10115"}}


def test_secrets_never_survive_inside_changes() -> None:
    changes, _ = diff_of("SmtpSettingsChanged", {"changes": {
        "smtp_password": {"old": "a", "new": "b"}, "smtp_host": {"old": "x", "new": "y"}}})
    assert changes == {"smtp_host": {"old": "x", "new": "y"}}
    assert redact([{"token": 1, "token_name": "ops"}]) == [{"token_name": "ops"}]


def test_entry_of_a_customer_event_keeps_the_envelope_and_the_actor() -> None:
    event = EventEnvelope(
        type="CustomerUpdated", category="customer", stream_id="c-1", version=2,
        metadata=Metadata(actor=Actor(kind="operator", id="t1", name="ops", ip="10.0.0.1"),
                          reason="asked by phone", correlation_id="corr"),
        data={"changes": {"notes": {"old": "", "new": "hi"}}},
    )
    entry = entry_of(event, stream="CUSTOMER_EVENTS", seq=7)
    assert (entry.customer_id, entry.action, entry.actor_name, entry.ip, entry.reason) == (
        "c-1", "updated", "ops", "10.0.0.1", "asked by phone")
    assert entry.event is not None and EventEnvelope.model_validate_json(entry.event) == event


def test_entry_of_another_stream_takes_the_customer_from_the_data() -> None:
    event = EventEnvelope(type="MessageSent", category="notification", stream_id="m-1", version=1,
                          data={"customer_id": "c-9", "channel": "sms"})
    entry = entry_of(event, stream="NOTIFICATION_EVENTS", seq=1)
    assert entry.customer_id == "c-9" and entry.event is None and entry.actor_kind == "system"
