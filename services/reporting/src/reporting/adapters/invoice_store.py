"""The reporting service's event store for invoices: a day invoiced twice is a domain error."""

from __future__ import annotations

import asyncpg
from shared.eventstore import EventStore

from reporting.domain.invoice import DayAlreadyInvoiced


def invoice_event_store(pool: asyncpg.Pool) -> EventStore:
    """The event store of the reporting schema; `invoiced_days_pkey` means a day is taken."""
    return EventStore(pool, unique_errors={"invoiced_days_pkey": DayAlreadyInvoiced})
