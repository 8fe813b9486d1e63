"""Contact commands as the batching core runs them: what they decide, and what they add to the append.

The handlers (`application/contacts.py`) turn requests into these, with the password already
hashed and its notification already sealed, so deciding stays fast and pure. Besides its
events, a batch writes in the same statement: the `contacts` rows (unique e-mails), the
password hashes, and the NOTIFY messages (through `message_outbox`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.contracts.customer import CommandMeta
from shared.contracts.notify import SystemMessage
from shared.eventstore import Fragment
from shared.message_outbox import OutboxMessage, outbox_fragment

from customer.domain import contacts as rules
from customer.domain import events as ev
from customer.domain.state import CustomerState

PasswordMethod = Literal["generated", "operator", "contact"]


@dataclass(frozen=True)
class NewPassword:
    """A password on its way to storage: its argon2id hash and, if generated, its sealed notification."""

    method: PasswordMethod
    hash: str
    notification: SystemMessage | None = None
    contains_password: rules.NotesCheck | None = None

    def __repr__(self) -> str:  # never show the hash or the check, even in a traceback
        return f"NewPassword(method={self.method!r})"


@dataclass(frozen=True)
class AddContactCmd:
    """Add a contact with its first password."""

    customer_id: str
    meta: CommandMeta
    contact_id: str
    fields: dict[str, object]
    password: NewPassword
    expected_version: int | None = None


@dataclass(frozen=True)
class UpdateContactCmd:
    """Change some fields of a contact."""

    customer_id: str
    meta: CommandMeta
    contact_id: str
    given: dict[str, object]
    expected_version: int | None = None


@dataclass(frozen=True)
class RemoveContactCmd:
    """Remove a contact."""

    customer_id: str
    meta: CommandMeta
    contact_id: str
    expected_version: int | None = None


@dataclass(frozen=True)
class SetPasswordCmd:
    """Reset a contact's password."""

    customer_id: str
    meta: CommandMeta
    contact_id: str
    password: NewPassword
    expected_version: int | None = None


@dataclass(frozen=True)
class RecordVerificationCmd:
    """A verification outcome from the verification service (e-mail, mobile or CLI)."""

    customer_id: str
    meta: CommandMeta
    contact_id: str
    kind: Literal["email", "mobile", "cli"]
    value: str
    verification_id: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ApprovedCliCmd:
    """An operator adds (approve=True) or removes an approved CLI."""

    customer_id: str
    meta: CommandMeta
    number: str
    approve: bool
    expected_version: int | None = None


ContactCommand = (
    AddContactCmd | UpdateContactCmd | RemoveContactCmd | SetPasswordCmd | RecordVerificationCmd
    | ApprovedCliCmd
)
CONTACT_COMMANDS = (
    AddContactCmd, UpdateContactCmd, RemoveContactCmd, SetPasswordCmd, RecordVerificationCmd,
    ApprovedCliCmd,
)


def decide_contact(cmd: ContactCommand, live: CustomerState, now: datetime) -> list[ev.Event]:
    """Dispatch one contact command to its rule."""
    if isinstance(cmd, AddContactCmd):
        return rules.decide_add_contact(
            live, cmd.contact_id, dict(cmd.fields), cmd.password.method, cmd.password.contains_password
        )
    if isinstance(cmd, UpdateContactCmd):
        return rules.decide_update_contact(live, cmd.contact_id, dict(cmd.given))
    if isinstance(cmd, RemoveContactCmd):
        return rules.decide_remove_contact(live, cmd.contact_id)
    if isinstance(cmd, SetPasswordCmd):
        return rules.decide_set_password(
            live, cmd.contact_id, cmd.password.method, cmd.password.contains_password
        )
    if isinstance(cmd, RecordVerificationCmd):
        return rules.decide_verified(live, cmd.contact_id, cmd.kind, cmd.value, cmd.verification_id)
    if cmd.approve:
        return rules.decide_approve_cli(live, cmd.number, "operator")
    return rules.decide_remove_cli(live, cmd.number)


_CONTACT_ROWS = (
    "INSERT INTO contacts (id, customer_id, email, removed)"
    " SELECT * FROM unnest({}::uuid[], {}::uuid[], {}::text[], {}::bool[])"
    " ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, removed = EXCLUDED.removed"
)
_PASSWORDS = (
    "INSERT INTO contact_passwords (contact_id, hash, set_at)"
    " SELECT * FROM unnest({}::uuid[], {}::text[], {}::timestamptz[])"
    " ON CONFLICT (contact_id) DO UPDATE SET hash = EXCLUDED.hash, set_at = EXCLUDED.set_at"
)
_FORGET_PASSWORDS = "DELETE FROM contact_passwords WHERE contact_id = ANY({}::uuid[])"


_TOUCHING = (*ev.CONTACT_EVENTS, ev.CustomerDeleted)  # events that change a customer's contact rows
_WITH_PASSWORD = (AddContactCmd, SetPasswordCmd)


def contact_fragments(
    decided: Sequence[object], working: dict[str, CustomerState | None],
    events: Sequence[tuple[str, ev.Event]], now: datetime,
) -> list[Fragment]:
    """The batch's contact rows, password hashes and NOTIFY messages (nothing when it has none)."""
    touched = {sid for sid, e in events if isinstance(e, _TOUCHING)}
    if not touched:  # most batches: creates and field changes
        return []
    removed = {e.contact_id: sid for sid, e in events if isinstance(e, ev.ContactRemoved)}
    live: dict[str, CustomerState] = {}
    rows: list[tuple[str, str, str, bool]] = []
    for stream_id in touched:
        state = working.get(stream_id)
        if state is None:
            continue
        for contact in state.contacts:
            rows.append((contact["id"], state.id, contact["email"], state.deleted))
            if not state.deleted:
                live[contact["id"]] = state
    rows.extend((cid, sid, "", True) for cid, sid in removed.items() if cid not in live)
    fragments: list[Fragment] = []
    if rows:
        fragments.append(Fragment(_CONTACT_ROWS, [list(c) for c in zip(*rows, strict=True)]))
    hashes: dict[str, str] = {}
    messages: list[OutboxMessage] = []
    for cmd in decided:
        if isinstance(cmd, _WITH_PASSWORD) and cmd.contact_id in live:
            hashes[cmd.contact_id] = cmd.password.hash
            if (note := cmd.password.notification) is not None:
                messages.append(OutboxMessage(
                    note.subject, note.notification_id, note.model_dump_json().encode(),
                    {"Patchbay-Customer-Id": cmd.customer_id},
                ))
    if hashes:
        fragments.append(Fragment(_PASSWORDS, [list(hashes), list(hashes.values()), [now] * len(hashes)]))
    if gone := [cid for cid in removed if cid not in live]:
        fragments.append(Fragment(_FORGET_PASSWORDS, [gone]))
    if messages:
        fragments.append(outbox_fragment(messages))
    return fragments

