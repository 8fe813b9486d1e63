"""The invoice store turns a day invoiced twice (invoiced_days' primary key) into a domain error."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest
from reporting.adapters.invoice_store import invoice_event_store
from reporting.bootstrap import MIGRATIONS, SCHEMA
from reporting.domain.invoice import DayAlreadyInvoiced
from shared.envelope import EventEnvelope
from shared.eventstore import Fragment
from shared.migrations import migrate

_DAYS = "INSERT INTO invoiced_days (customer_id, day, invoice_id) SELECT {}, unnest({}::date[]), {}"


async def test_a_day_invoiced_twice_is_the_domain_error(make_database: object) -> None:
    url: str = await make_database()  # type: ignore[operator]
    await migrate(url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(url, server_settings={"search_path": SCHEMA})
    try:
        store = invoice_event_store(pool)
        customer = str(uuid.uuid4())

        def invoice(version: int, days: list[date]) -> tuple[list[EventEnvelope], list[Fragment]]:
            event = EventEnvelope(type="InvoiceIssued", category="billing", stream_id=customer,
                                  version=version, data={})
            return [event], [Fragment(_DAYS, [customer, days, uuid.uuid4()])]

        events, fragments = invoice(1, [date(2030, 1, 1), date(2030, 1, 2)])
        await store.append(events, fragments=fragments)
        events, fragments = invoice(2, [date(2030, 1, 2), date(2030, 1, 3)])
        with pytest.raises(DayAlreadyInvoiced):
            await store.append(events, fragments=fragments)
        assert [e.version for e in (await store.load([customer]))[customer]] == [1]  # nothing written
    finally:
        await pool.close()
