"""What an erasure adds to its append: the keys destroyed, the contacts' rows and passwords gone."""

from __future__ import annotations

from collections.abc import Sequence

from shared.eventstore import Fragment
from shared.personal_data import contact_subject

from customer.adapters.data_keys import ERASE_SQL
from customer.domain import events as ev

_CONTACTS = "UPDATE contacts SET email = '', removed = true WHERE id = ANY({}::uuid[])"
_PASSWORDS = "DELETE FROM contact_passwords WHERE contact_id = ANY({}::uuid[])"


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
    return fragments
