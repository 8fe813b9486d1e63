"""The ledger's live write (projections/ledger.py) against a real PostgreSQL and nats-server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from customer.bootstrap import CustomerService
from customer.projections.ledger import LIVE, SPEC, decode_data, write_calls
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy
from shared.contracts.wire import WireCallCharge

from .conftest import create
from .test_money import cdr, wait_answer

pytestmark = pytest.mark.asyncio(loop_scope="session")
TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def record(customer_id: str, charge: str, started_at: datetime, call_id: str | None = None) -> WireCallCharge:
    return decode_data(orjson.dumps({"call_id": call_id or uuid.uuid4().hex, "customer_id": customer_id,
                                     "started_at": started_at.isoformat(), "charge": charge}))


async def test_each_call_counts_once_with_its_tax_day_and_checkpoint(service: CustomerService) -> None:
    """New calls only, the tax of the call's start, today's charges after a late record, the
    checkpoint never moving back; the answer is the customers whose totals changed."""
    a, b, consumer = str(uuid.uuid4()), str(uuid.uuid4()), f"test-{uuid.uuid4().hex[:8]}"
    await service.pool.execute("INSERT INTO tax_history (customer_id, effective_at, tax) VALUES"
                               " ($1, $2, 10), ($1, $3, 20)", a, TODAY - timedelta(days=30), TODAY)
    yesterday = TODAY - timedelta(days=1)
    first = [record(a, "1.00", yesterday), record(a, "2.00", TODAY + timedelta(minutes=1)),
             record(b, "0.50", yesterday)]
    async with service.pool.acquire() as conn, conn.transaction():
        changed = {c.customer_id: c for c in await write_calls(conn, first, LIVE, (consumer, 10))}
    assert set(changed) == {a, b}
    # 1.00 at 10% (yesterday) + 2.00 at 20% (today); today's charges are today's call only
    assert (changed[a].charges, changed[a].day, changed[a].day_charges) == (
        Decimal("3.5"), TODAY.date(), Decimal("2.4"))
    assert (changed[b].charges, changed[b].day, changed[b].day_charges) == (
        Decimal("0.5"), yesterday.date(), Decimal("0.5"))

    again = [first[0], record(b, "0.25", TODAY), record(b, "0.10", yesterday)]  # a's call a second time
    async with service.pool.acquire() as conn, conn.transaction():
        changed = {c.customer_id: c for c in await write_calls(conn, again, LIVE, (consumer, 7))}
    assert set(changed) == {b}  # a's totals did not change
    assert (changed[b].charges, changed[b].day, changed[b].day_charges) == (
        Decimal("0.85"), TODAY.date(), Decimal("0.25"))  # the late record of yesterday counts in all only
    async with service.pool.acquire() as conn, conn.transaction():
        assert await write_calls(conn, [first[1]], LIVE, (consumer, 12)) == []  # nothing new: no totals

    # a customer with a credit note and no call yet (no day): its first calls start the day
    c = str(uuid.uuid4())
    await service.pool.execute("INSERT INTO ledger_charges (customer_id, credit_notes, seq) VALUES ($1, 5, 1)", c)
    async with service.pool.acquire() as conn:
        [charges] = await write_calls(conn, [record(c, "1.25", yesterday), record(c, "0.75", yesterday)], LIVE, None)
    assert (charges.charges, charges.day, charges.day_charges, charges.credit_notes, charges.seq) == (
        Decimal("2.00"), yesterday.date(), Decimal("2.00"), Decimal("5"), 2)

    rows = {r["customer_id"]: r for r in await service.pool.fetch(
        "SELECT * FROM ledger_charges WHERE customer_id = ANY($1::text[])", [a, b])}
    assert (rows[a]["charges"], rows[a]["calls"], rows[a]["seq"]) == (Decimal("3.5"), 2, 1)
    assert (rows[b]["charges"], rows[b]["calls"], rows[b]["seq"]) == (Decimal("0.85"), 3, 2)
    assert rows[b]["day"] == TODAY.date()
    calls = await service.pool.fetch("SELECT customer_id, tax, charged FROM ledger_calls"
                                     " WHERE customer_id = $1 ORDER BY started_at", a)
    assert [(r["tax"], r["charged"]) for r in calls] == [(10, Decimal("1.1")), (20, Decimal("2.4"))]
    assert await service.pool.fetchval("SELECT seq FROM ledger_checkpoints WHERE consumer = $1", consumer) == 12


async def test_the_live_durables_ack_a_batch_at_once_and_nothing_comes_again(
    service: CustomerService, nc: NatsClient,
) -> None:
    """AckPolicy.ALL on every ledger partition: records are charged once, none left unacknowledged."""
    js = nc.jetstream()
    durables = [c for c in await js.consumers_info("CALLS") if c.name.startswith(f"{SPEC.durable}-p")]
    assert durables and all(c.config.ack_policy == AckPolicy.ALL for c in durables)
    cid = (await create(nc, currency="EUR", debit_limit="100"))["id"]
    for _ in range(30):
        await cdr(nc, cid, "0.10")
    await wait_answer(nc, cid, lambda a: a["credit"]["balance"] == "-3.00", timeout=10)

    async def settled() -> bool:
        infos = [await js.consumer_info("CALLS", c.name) for c in durables]
        return all(i.num_ack_pending == 0 and i.num_redelivered == 0 for i in infos)

    await wait_for(settled, timeout=10, message="ledger records left unacknowledged or redelivered")
    assert await service.pool.fetchval("SELECT calls FROM ledger_charges WHERE customer_id = $1", cid) == 30
