"""The customer commands the worker runs, and the rule that decides each against its customer's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from shared.contracts.customer import (
    CommandMeta,
    CreateCustomer,
    DeleteCustomer,
    SetStatus,
    UpdateCustomer,
)
from shared.contracts.events import REGISTRY
from shared.contracts.privacy import EraseContact, EraseCustomer
from shared.envelope import EventEnvelope, Metadata

from customer.application.contact_commands import CONTACT_COMMANDS, ContactCommand, decide_contact
from customer.application.erasure import decide_erase
from customer.application.number_block_commands import (
    NUMBER_BLOCK_COMMANDS,
    NumberBlockCommand,
    decide_number_block,
)
from customer.application.payments import PAYMENT_COMMANDS, PaymentCommand, decide_payment
from customer.domain import decide as rules
from customer.domain import erasure
from customer.domain import events as ev
from customer.domain.bulk_edit import decide_bulk_edit
from customer.domain.evolve import apply
from customer.domain.state import CustomerState


@dataclass(frozen=True)
class ExpirePenalty:
    """The system returns a customer whose penalty has passed to active."""

    customer_id: str
    meta: CommandMeta


@dataclass(frozen=True)
class EditCustomerCmd:
    """One customer's share of a bulk edit (`changes` as JSON-mode values)."""

    customer_id: str
    meta: CommandMeta
    changes: dict[str, Any]
    add_tags: list[str] = field(default_factory=list)
    remove_tags: list[str] = field(default_factory=list)
    expected_version: int | None = None


Command = (
    CreateCustomer | UpdateCustomer | SetStatus | DeleteCustomer | ExpirePenalty | ContactCommand
    | NumberBlockCommand | EditCustomerCmd | PaymentCommand | EraseCustomer | EraseContact
)



def event_metadata(meta: CommandMeta) -> Metadata:
    """The metadata of the events a command makes."""
    return Metadata(
        actor=meta.actor, correlation_id=meta.correlation_id, causation_id=meta.command_id,
        command_id=meta.command_id, reason=meta.reason,
    )


def decide(cmd: Command, state: CustomerState | None, now: datetime) -> list[ev.Event]:
    """The events a command makes from its customer's state (a ServiceError when refused)."""
    if isinstance(cmd, CreateCustomer):
        return rules.decide_create(cmd.customer, now)
    erasure.require_not_erased(state)
    if isinstance(cmd, EraseCustomer | EraseContact):
        return decide_erase(cmd, state)
    live = rules.require_live(state, cmd.customer_id)  # the id's text only in the error
    if isinstance(cmd, ExpirePenalty):
        return rules.decide_penalty_expiry(live, now)
    rules.require_expected_version(live, cmd.expected_version)
    if isinstance(cmd, UpdateCustomer):
        return rules.decide_update(live, cmd.changes)
    if isinstance(cmd, SetStatus):
        return rules.decide_set_status(live, cmd.status, cmd.until, now)
    if isinstance(cmd, CONTACT_COMMANDS):
        return decide_contact(cmd, live, now)
    if isinstance(cmd, NUMBER_BLOCK_COMMANDS):
        return decide_number_block(cmd, live)
    if isinstance(cmd, EditCustomerCmd):
        return decide_bulk_edit(live, cmd.changes, cmd.add_tags, cmd.remove_tags, now)
    if isinstance(cmd, PAYMENT_COMMANDS):
        return decide_payment(cmd, live)
    return rules.decide_delete(live)


@dataclass(slots=True)
class Decision:
    """A decided command: its events (enveloped), the state after them, its card JSON."""

    drafts: list[ev.Event]
    events: list[EventEnvelope]
    state: CustomerState | None
    card: bytes


def decision(cmd: Command, stream_id: str, state: CustomerState | None, now: datetime) -> Decision:
    """Decide `cmd` against `state` and build what its append needs (a ServiceError when refused)."""
    drafts = decide(cmd, state, now)
    events: list[EventEnvelope] = []
    for draft in drafts:
        # `state` moves on with each event, so the next version is always one more
        version = (state.version if state else 0) + 1
        events.append(REGISTRY.envelope(
            draft, category=ev.CUSTOMER_CATEGORY, stream_id=stream_id, version=version,
            occurred_at=now, metadata=event_metadata(cmd.meta),
        ))
        state = apply(state, draft, stream_id=stream_id, version=version, at=now)
    card = (orjson.dumps(state.card(), default=str)
            if state is not None and (drafts or not isinstance(cmd, PAYMENT_COMMANDS)) else b"")
    return Decision(drafts, events, state, card)
