"""The customer service's event store: its tables' unique constraints raise domain errors.

An append writes the read-model rows (`customers`, `contacts`, `number_blocks`) in the same
statement as the events, so their unique indexes are the last word on names, e-mails and
blocks; the store turns each violation into the error the application answers with.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from shared.envelope import EventEnvelope
from shared.eventstore import EventStore
from shared.personal_data import KeyProvider

from customer.domain.errors import BlockTaken, EmailTaken, NameTaken

# constraint (migrations 0002, 0003, 0005) -> the domain error it means
CONSTRAINT_ERRORS = {
    "customers_name_uq": NameTaken,
    "contacts_email_uq": EmailTaken,
    "number_blocks_pkey": BlockTaken,
}


def customer_event_store(
    pool: asyncpg.Pool, *, on_appended: Callable[[list[EventEnvelope]], None] | None = None,
    on_appended_json: Callable[[dict[int, bytes]], None] | None = None,
    keys: KeyProvider | None = None, encrypt: bool = True,
) -> EventStore:
    """The event store of the customer schema, answering taken names, e-mails and blocks.

    `on_appended_json`: each appended event's JSON by position (the outbox relay publishes it).
    With `keys`, personal values are encrypted on append (`encrypt`) and opened on every load.
    """
    return EventStore(
        pool, on_appended=on_appended, on_appended_json=on_appended_json,
        unique_errors=CONSTRAINT_ERRORS, keys=keys, encrypt=encrypt,
    )
