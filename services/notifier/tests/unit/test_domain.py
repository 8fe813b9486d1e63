"""Pure parts: placeholders, retry decisions, templates, recipients, the handover journal."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from notifier.adapters.handover_journal import HANDED, INTENT, HandoverJournal
from notifier.application.broadcast import recipients
from notifier.application.templates import TemplateNotFound, render_system
from notifier.domain.rendering import BROADCAST_FIELDS, UnknownPlaceholder, check, header_safe, render
from notifier.domain.retry import Outcome, RetryPolicy, smtp_outcome, twilio_outcome
from shared.contracts.notifier import SendMessage


def test_render_substitutes_only_offered_names_as_text() -> None:
    values = {"customer.name": "{{contact.name}} & <b>", "contact.name": "Ann"}
    assert render("Hi {{ contact.name }} of {{customer.name}}", values) == "Hi Ann of {{contact.name}} & <b>"


@pytest.mark.parametrize(
    "template",
    [
        "{{customer.__class__}}",
        "{{customer.name.__init__}}",
        "{{ config }}",
        "{{contact.password}}",
    ],
)
def test_anything_outside_the_offered_values_is_refused(template: str) -> None:
    with pytest.raises(UnknownPlaceholder):
        check(template, BROADCAST_FIELDS)


def test_non_placeholder_braces_are_left_alone() -> None:
    assert render("{{ not valid! }} {x}", {}) == "{{ not valid! }} {x}"


def test_header_safe_folds_newlines() -> None:
    assert header_safe("a\r\nBcc: x@y\n b") == "a Bcc: x@y b"


def test_retry_policy_decisions_and_backoff() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=3.0, jitter=0.0)
    assert policy.decide(Outcome.sent("x"), 1) == "sent"
    assert policy.decide(Outcome.permanent("550"), 1) == "failed"
    assert policy.decide(Outcome.transient("421"), 2) == "retry"
    assert policy.decide(Outcome.transient("421"), 3) == "dead"
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]


def test_smtp_and_twilio_classification() -> None:
    assert smtp_outcome(550, "no such user").kind == "permanent"
    assert smtp_outcome(451, "try later").kind == "transient"
    assert smtp_outcome(535, "auth failed").kind == "transient"  # an admin can fix the settings
    assert twilio_outcome(400, 21211, "bad number").kind == "permanent"
    assert twilio_outcome(429, 20429, "too many").kind == "transient"
    assert twilio_outcome(503, None, "down").kind == "transient"
    # credentials refused: retried, and the channel pauses (every message would fail alike)
    login = smtp_outcome(535, "auth failed", at_login=True)
    assert login.kind == "transient" and login.credentials_refused
    assert not smtp_outcome(535, "auth failed").credentials_refused  # a reply to a message, not a login
    token = twilio_outcome(401, 20003, "authenticate")
    assert token.kind == "transient" and token.credentials_refused
    assert not twilio_outcome(403, None, "forbidden").credentials_refused


def test_system_templates_render_with_the_secret() -> None:
    out = render_system(
        "contact_password",
        "email",
        {"contact_name": "Nia", "customer_name": "Acme", "ignored": "{{secret}}"},
        "S3cret",
    )
    assert out.subject == "Your Patchbay portal password" and "S3cret" in out.body and "Hello Nia" in out.body
    link = render_system("email_code", "email", {"link_base": "https://portal.example/verify?code="}, "12 34")
    assert "https://portal.example/verify?code=12%2034" in link.body
    with pytest.raises(TemplateNotFound):
        render_system("mobile_code", "email", {}, "1")
    receipt = render_system("payment_receipt", "email", {
        "contact_name": "Bob", "customer_name": "Acme", "amount": "25.50", "currency": "EUR",
        "reference": "wire-1", "payment_kind": "payment", "payment_status": "completed"}, None)
    assert receipt.subject == "Receipt: payment of 25.50 EUR (wire-1)"
    assert "a payment of 25.50 EUR for Acme" in receipt.body and "Status: completed" in receipt.body


def test_recipients_one_per_address_and_skips_customers_without_one() -> None:
    cmd = SendMessage(
        channel="email",
        subject="For {{customer.name}}",
        body="Hi {{contact.name}}",
        customer_ids=[uuid.uuid4()],
    )
    with_two = {
        "id": str(uuid.uuid4()),
        "name": "Acme",
        "contacts": [
            {"id": str(uuid.uuid4()), "name": "Ann", "email": "ann@a.example"},
            {"id": str(uuid.uuid4()), "name": "Ann again", "email": "ANN@a.example"},
            {"id": str(uuid.uuid4()), "name": "Bob", "email": None, "mobile": "+15550001111"},
        ],
    }
    without = {"id": str(uuid.uuid4()), "name": "Empty", "contacts": []}
    message_id = uuid.uuid4()
    out, skipped = recipients(cmd, message_id, [with_two, without])
    assert [(d.recipient, d.subject, d.body) for d in out] == [("ann@a.example", "For Acme", "Hi Ann")]
    assert out[0].idempotency_key == f"{message_id}:ann@a.example"
    assert [(str(s.customer_id), s.reason) for s in skipped] == [
        (without["id"], "no contact with an e-mail address")
    ]


def test_send_message_rules() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SendMessage(channel="sms", body="x")
    with pytest.raises(ValueError, match="subject"):
        SendMessage(channel="email", body="x", customer_ids=[uuid.uuid4()])
    with pytest.raises(ValueError, match="no subject"):
        SendMessage(channel="sms", subject="s", body="x", customer_ids=[uuid.uuid4()])


def test_handover_journal_survives_its_writer(tmp_path: Path) -> None:
    instance = uuid.uuid4()
    journal = HandoverJournal(tmp_path, instance)
    journal.open()
    ids = [uuid.uuid4() for _ in range(3)]
    for i in ids:
        journal.record(i, INTENT)
        journal.record(i)
    cut = uuid.uuid4()
    journal.record(cut, INTENT)  # killed between the notes around its final write
    # a torn last record (a crash mid-write) is ignored
    with HandoverJournal.path_for(tmp_path, instance).open("ab") as f:
        f.write(b"\x01\x02")
    assert HandoverJournal.read(tmp_path, instance) == {i: HANDED for i in ids} | {cut: INTENT}
    assert HandoverJournal.read(tmp_path, uuid.uuid4()) is None
    journal.close()
    HandoverJournal.remove(tmp_path, instance)
    assert HandoverJournal.read(tmp_path, instance) is None


def test_a_journal_of_the_earlier_format_still_reads_as_handed_over(tmp_path: Path) -> None:
    instance, ids = uuid.uuid4(), [uuid.uuid4() for _ in range(2)]
    HandoverJournal.legacy_path_for(tmp_path, instance).write_bytes(b"".join(i.bytes for i in ids))
    assert HandoverJournal.read(tmp_path, instance) == {i: HANDED for i in ids}
    HandoverJournal.remove(tmp_path, instance)
    assert HandoverJournal.read(tmp_path, instance) is None


def test_the_password_e_mail_promises_nothing_the_portal_cannot_do() -> None:
    # the portal has no password change yet (issue 14): the e-mail must not say it has
    for template in ("contact_password", "password_reset"):
        body = render_system(template, "email", {"contact_name": "Nia"}, "S3cret").body.lower()
        assert "change it after logging in" not in body and "change it in the portal" not in body
    first = render_system("contact_password", "email", {"contact_name": "Nia"}, "S3cret").body
    assert "ask your account manager" in first
