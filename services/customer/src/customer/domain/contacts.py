"""Contacts, verified flags and approved CLIs: decide and evolve, pure and synchronous.

Events say that a password was set and how (`generated` or `operator`), never what it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.contracts.contacts import CONTACT_KEYS, CONTACT_NOT_NULL
from shared.errors import ErrorCode, ErrorDetail, ServiceError

from customer.domain import events as ev
from customer.domain.state import CustomerState

NotesCheck = Callable[[str], bool]  # True when the text contains the contact's password
NOTES_FIELDS = ("public_notes", "private_notes")


def _invalid(field: str, message: str, code: str = ErrorCode.VALIDATION) -> ServiceError:
    return ServiceError(code, message, [ErrorDetail(field=field, message=message)])


def find_contact(state: CustomerState, contact_id: str) -> dict[str, Any]:
    """The contact of this customer with this id, or a not-found error."""
    for contact in state.contacts:
        if contact["id"] == contact_id:
            return contact
    raise ServiceError(ErrorCode.NOT_FOUND, f"customer {state.id} has no contact {contact_id}")


def _check_email_free(state: CustomerState, email: str, contact_id: str) -> None:
    # across customers the database's unique index decides; within one card we can say it here
    for contact in state.contacts:
        if contact["id"] != contact_id and contact["email"].lower() == email.lower():
            raise _invalid("email", f"another contact already logs in as {email}", ErrorCode.EMAIL_TAKEN)


def _check_notes(notes: dict[str, str], contains_password: NotesCheck | None) -> None:
    if contains_password is None:
        return
    for field in NOTES_FIELDS:
        if contains_password(notes.get(field) or ""):
            raise _invalid(
                field, "the notes contain the contact's password; never keep passwords in notes",
                ErrorCode.PASSWORD_IN_NOTES,
            )


def decide_add_contact(
    state: CustomerState, contact_id: str, fields: dict[str, Any], method: str,
    contains_password: NotesCheck | None,
) -> list[ev.Event]:
    """A new contact with every field; the password's method only."""
    _check_email_free(state, fields["email"], contact_id)
    _check_notes(fields, contains_password)
    contact = {key: fields.get(key) for key in CONTACT_KEYS} | {"id": contact_id}
    return [ev.ContactAdded(contact=contact, password=method)]


def decide_update_contact(
    state: CustomerState, contact_id: str, given: dict[str, Any]
) -> list[ev.Event]:
    """Changed fields with old and new values; a changed e-mail or mobile needs verifying again."""
    contact = find_contact(state, contact_id)
    nulls = [k for k, v in given.items() if v is None and k in CONTACT_NOT_NULL]
    if nulls:
        raise ServiceError(ErrorCode.VALIDATION, "these fields cannot be null",
                           [ErrorDetail(field=k, message="may not be null") for k in nulls])
    if "email" in given:
        _check_email_free(state, given["email"], contact_id)
    new = dict(given)
    for field, flag in (("email", "email_verified"), ("mobile", "mobile_verified")):
        if field in new and new[field] != contact[field] and flag not in new:
            new[flag] = False
    changes = {k: {"old": contact[k], "new": v} for k, v in new.items() if contact[k] != v}
    if not changes:
        return []
    return [ev.ContactUpdated(contact_id=contact_id, changes=changes)]


def decide_remove_contact(state: CustomerState, contact_id: str) -> list[ev.Event]:
    """The contact goes; its e-mail becomes free."""
    contact = find_contact(state, contact_id)
    return [ev.ContactRemoved(contact_id=contact_id, name=contact["name"], email=contact["email"])]


def decide_set_password(
    state: CustomerState, contact_id: str, method: str, contains_password: NotesCheck | None
) -> list[ev.Event]:
    """A new password (how it was set, never what it is)."""
    contact = find_contact(state, contact_id)
    _check_notes(contact, contains_password)
    return [ev.ContactPasswordSet(contact_id=contact_id, method=method)]


def decide_verified(
    state: CustomerState, contact_id: str, kind: str, value: str, verification_id: str
) -> list[ev.Event]:
    """A verification result: applies only while the contact still has that e-mail or mobile."""
    if kind == "cli":
        return decide_approve_cli(state, value, "test_call", contact_id)
    contact = next((c for c in state.contacts if c["id"] == contact_id), None)
    if contact is None or contact[kind] != value or contact[f"{kind}_verified"]:
        return []
    if kind == "email":
        return [ev.ContactEmailVerified(contact_id=contact_id, email=value, verification_id=verification_id)]
    return [ev.ContactMobileVerified(contact_id=contact_id, mobile=value, verification_id=verification_id)]


def decide_approve_cli(
    state: CustomerState, number: str, method: str, contact_id: str | None = None
) -> list[ev.Event]:
    """Add a CLI to approved_clis (by a verified test call, or by an operator)."""
    if number in state.approved_clis:
        return []
    return [ev.CliApproved(number=number, method=method, contact_id=contact_id)]


def decide_remove_cli(state: CustomerState, number: str) -> list[ev.Event]:
    """Take a CLI off approved_clis."""
    if number not in state.approved_clis:
        raise _invalid("number", f"{number} is not an approved CLI of this customer", ErrorCode.NOT_FOUND)
    return [ev.CliRemoved(number=number)]


def _replace_contact(state: CustomerState, contact_id: str, **changes: Any) -> CustomerState:
    contacts = tuple(c | changes if c["id"] == contact_id else c for c in state.contacts)
    return replace(state, contacts=contacts)


def evolve_contacts(state: CustomerState, event: ev.Event) -> CustomerState:
    """Apply one contact or CLI event (the caller has set version and updated_at)."""
    match event:
        case ev.ContactAdded(contact=contact):
            return replace(state, contacts=(*state.contacts, dict(contact)))
        case ev.ContactUpdated(contact_id=contact_id, changes=changes):
            return _replace_contact(state, contact_id, **{k: v["new"] for k, v in changes.items()})
        case ev.ContactRemoved(contact_id=contact_id):
            return replace(state, contacts=tuple(c for c in state.contacts if c["id"] != contact_id),
                           removed_contacts=(*state.removed_contacts, contact_id))
        case ev.ContactEmailVerified(contact_id=contact_id):
            return _replace_contact(state, contact_id, email_verified=True)
        case ev.ContactMobileVerified(contact_id=contact_id):
            return _replace_contact(state, contact_id, mobile_verified=True)
        case ev.CliApproved(number=number):
            return replace(state, approved_clis=tuple(sorted({*state.approved_clis, number})))
        case ev.CliRemoved(number=number):
            return replace(state, approved_clis=tuple(c for c in state.approved_clis if c != number))
    return state  # ContactPasswordSet changes nothing the card shows
