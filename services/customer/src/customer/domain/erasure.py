"""Erasure of personal data (product.md section 15): decide and evolve, pure.

Only a deleted customer, or a removed contact, can be erased; the event names the subjects
whose keys are destroyed in the same statement. Evolving it leaves `"[erased]"` where the
personal values were: what a fold of the same events reads once the keys are gone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.contracts.events.customer import CARD_PERSONAL, CONTACT_PERSONAL
from shared.errors import ErrorCode, ServiceError
from shared.personal_data import contact_subject, customer_subject, erased_value

from customer.domain import events as ev
from customer.domain.state import CustomerState


def require_not_erased(state: CustomerState | None) -> None:
    """Refuse any command on an erased card: nothing new can be stored for it."""
    if state is not None and state.erased:
        raise ServiceError(
            ErrorCode.ERASED, f"customer {state.id}'s personal data was erased; it takes no more changes"
        )


def decide_erase_customer(state: CustomerState) -> list[ev.Event]:
    """Erase a deleted card: its own and every contact's personal data."""
    if not state.deleted:
        raise ServiceError(
            ErrorCode.CONFLICT, f"customer {state.id} is not deleted; delete it before erasing"
        )
    contacts = [c["id"] for c in state.contacts] + [c for c in state.removed_contacts]
    subjects = [customer_subject(state.id), *(contact_subject(c) for c in contacts)]
    return [ev.CustomerErased(subjects=subjects)]


def decide_erase_contact(state: CustomerState, contact_id: str) -> list[ev.Event]:
    """Erase a removed contact's personal data."""
    if contact_id in state.erased_contacts:
        raise ServiceError(ErrorCode.CONFLICT, f"contact {contact_id} was erased already")
    if any(c["id"] == contact_id for c in state.contacts):
        raise ServiceError(
            ErrorCode.CONFLICT, f"contact {contact_id} is not removed; remove it before erasing"
        )
    if contact_id not in state.removed_contacts:
        raise ServiceError(ErrorCode.NOT_FOUND, f"customer {state.id} has no removed contact {contact_id}")
    return [ev.ContactErased(contact_id=contact_id, subjects=[contact_subject(contact_id)])]


def _erase_contact(contact: dict[str, Any]) -> dict[str, Any]:
    return contact | {k: erased_value(contact.get(k)) for k in CONTACT_PERSONAL if k in contact}


def _erase_card(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for path in CARD_PERSONAL:
        head, _, tail = path.partition(".")
        if not tail:
            out[head] = erased_value(out.get(head))
        elif isinstance(out.get(head), dict):
            out[head] = {**out[head], tail: erased_value(out[head].get(tail))}
    return out


def evolve_erasure(state: CustomerState, event: ev.Event) -> CustomerState:
    """Apply CustomerErased or ContactErased (the caller has set version and updated_at)."""
    match event:
        case ev.CustomerErased():
            erased = tuple(c["id"] for c in state.contacts) + state.removed_contacts
            return replace(
                state, fields=_erase_card(state.fields), erased=True,
                contacts=tuple(_erase_contact(c) for c in state.contacts),
                removed_contacts=(), erased_contacts=(*state.erased_contacts, *erased),
            )
        case ev.ContactErased(contact_id=contact_id):
            return replace(
                state, removed_contacts=tuple(c for c in state.removed_contacts if c != contact_id),
                erased_contacts=(*state.erased_contacts, contact_id),
            )
    return state
