"""What an erasure adds to its append: the keys destroyed, the contacts' rows and passwords gone."""

from __future__ import annotations

from collections.abc import Sequence

from shared.contracts.privacy import EraseContact, EraseCustomer
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import Fragment
from shared.personal_data import contact_subject

from customer.adapters.data_keys import ERASE_SQL
from customer.application.idempotency import reply_prefix
from customer.domain import erasure
from customer.domain import events as ev
from customer.domain.state import CustomerState

_CONTACTS = "UPDATE contacts SET email = '', removed = true WHERE id = ANY({}::uuid[])"
_PASSWORDS = "DELETE FROM contact_passwords WHERE contact_id = ANY({}::uuid[])"
# PayPal's notifications as received name the payer: an erased customer's lose body and e-mail
_IPNS = (
    "UPDATE ipn_log SET payer_email = '[erased]', body = convert_to('[erased]', 'UTF8')"
    " WHERE customer_id = ANY({}::uuid[])"
)


def erased_subjects(events: Sequence[tuple[str, ev.Event]]) -> list[str]:
    """The subjects whose keys the batch's erase events destroy."""
    return [s for _, e in events if isinstance(e, ev.ERASURE_EVENTS) for s in e.subjects]


def erasure_fragments(events: Sequence[tuple[str, ev.Event]]) -> list[Fragment]:
    """Destroy the keys (leaving tombstones) and drop the contacts' logins, in the same statement."""
    subjects = erased_subjects(events)
    if not subjects:
        return []
    prefix = contact_subject("")
    contacts = [s[len(prefix):] for s in subjects if s.startswith(prefix)]
    fragments = [Fragment(ERASE_SQL, [subjects])]
    if contacts:
        fragments += [Fragment(_CONTACTS, [contacts]), Fragment(_PASSWORDS, [contacts])]
    if customers := [sid for sid, e in events if isinstance(e, ev.CustomerErased)]:
        fragments.append(Fragment(_IPNS, [customers]))
    return fragments


def decide_erase(cmd: EraseCustomer | EraseContact, state: CustomerState | None) -> list[ev.Event]:
    """Erase a deleted card, or a removed contact: a reason is required."""
    if state is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"customer {cmd.customer_id} does not exist")
    if not (cmd.meta.reason or "").strip():
        raise ServiceError(ErrorCode.REASON_REQUIRED, "an erasure needs a reason")
    if isinstance(cmd, EraseCustomer):
        return erasure.decide_erase_customer(state)
    return erasure.decide_erase_contact(state, str(cmd.contact_id))


def erased_replies(facts: list[tuple[str, ev.Event]], cards: dict[str, bytes]) -> list[Fragment]:
    """Stored replies about an erased customer become its card as it reads now ("[erased]")."""
    erased = {s for s, e in facts if isinstance(e, ev.ERASURE_EVENTS)}
    return [Fragment("UPDATE commands SET reply = {} WHERE reply LIKE {}",
                     [cards[s].decode(), reply_prefix(s) + "%"]) for s in erased]
