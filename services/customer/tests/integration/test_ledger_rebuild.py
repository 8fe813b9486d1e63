"""Ledger rebuild against real NATS and PostgreSQL: row for row, balances unchanged, records during it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings, start
from customer.projections.ledger import LEDGER_CHANGED, Charges
from customer.projections.ledger_rebuild import LedgerRebuilder, LedgerRebuildRefused
from devtools.embedded import EmbeddedNats
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.money import with_tax
from shared.stack_file import tool_nats

from .conftest import call, create

pytestmark = pytest.mark.asyncio(loop_scope="session")
Rows = dict[str, list[tuple[str, ...]]]
TABLES = {"ledger_calls": "call_id", "ledger_credit_notes": "id", "ledger_charges": "customer_id"}


@pytest.fixture(scope="module")
def own_nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of this module's own: CALLS holds only this module's records."""
    if os.environ.get("PATCHBAY_NATS_URL"):
        pytest.skip("the rebuild replays whole streams: needs a nats-server of its own (embedded mode)")
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("ledger-nats")))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(own_nats_url: str, make_database: Any) -> AsyncIterator[CustomerService]:
    service = await start(CustomerSettings(nats_url=own_nats_url, database_url=await make_database()))
    yield service
    try:
        await asyncio.wait_for(service.stop(), 10)
    except TimeoutError:
        await service.nc.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(tool: NatsClient) -> Ledger:
    """What this module sent (the tests share the service, its streams and its tables)."""
    return Ledger(tool, {})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tool(svc: CustomerService) -> AsyncIterator[NatsClient]:
    """The operator's connection (the provisioner), as `patchbay rebuild ledger` has."""
    nc = await tool_nats(svc.settings.nats_url)
    yield nc
    await nc.drain()


class Ledger:
    """What the test sent: the records (each call id once, the first copy) and the notes."""

    def __init__(self, nc: NatsClient, taxes: dict[str, Decimal]) -> None:
        self.js = nc.jetstream()
        self.taxes = taxes
        self.calls: dict[str, tuple[str, Decimal]] = {}
        self.notes: dict[str, tuple[str, Decimal]] = {}
        self.rng = random.Random(21)

    async def cdr(self, customer_id: str, charge: str, *, call_id: str | None = None, days_ago: int = 0) -> str:
        call_id = call_id or uuid.uuid4().hex
        started = (datetime.now(UTC) - timedelta(days=days_ago, minutes=5)).isoformat()
        record = {"call_id": call_id, "customer_id": customer_id, "started_at": started,
                  "answered_at": started, "ended_at": started, "duration_s": 60, "billed_duration_s": 60,
                  "charge": charge, "cost": "0", "disposition": "answered", "sip_code": 200, "pdd_ms": 100}
        await self.js.publish(f"calls.cdr.{customer_id}", json.dumps(record).encode(),
                              headers={"Nats-Msg-Id": uuid.uuid4().hex})
        self.calls.setdefault(call_id, (customer_id, Decimal(charge)))
        return call_id

    async def note(self, customer_id: str, amount: str) -> None:
        note_id, now = str(uuid.uuid4()), datetime.now(UTC).isoformat()
        envelope = {
            "event_id": str(uuid.uuid4()), "type": "CreditNoteIssued", "category": "billing",
            "stream_id": customer_id, "version": 1, "occurred_at": now, "data": {
                "id": note_id, "number": len(self.notes) + 1, "document_number": f"CN-{len(self.notes) + 1}",
                "invoice_id": str(uuid.uuid4()), "invoice_number": "INV-1", "customer_id": customer_id,
                "currency": "EUR", "amount": amount, "reason": "outage", "created_at": now}}
        for _ in range(2):  # sent twice: counts once, by the note's id
            await self.js.publish(f"events.billing.{customer_id}.CreditNoteIssued", json.dumps(envelope).encode(),
                                  headers={"Nats-Msg-Id": uuid.uuid4().hex})
        self.notes[note_id] = (customer_id, Decimal(amount))

    async def traffic(self, customers: list[str], n: int) -> None:
        """n records, one in five a copy of an earlier call id, some of older days; a malformed one."""
        for i in range(n):
            cid = self.rng.choice(customers)
            if i % 5 == 4:
                old = self.rng.choice(list(self.calls))
                await self.cdr(self.calls[old][0], "9.99", call_id=old)  # a copy: the first one counts
            else:
                await self.cdr(cid, f"{self.rng.randrange(1, 999) / 100:.2f}", days_ago=self.rng.choice([0, 0, 1, 3]))
            if i % 50 == 0:
                await self.js.publish(f"calls.cdr.{cid}", b"{not a record")

    def charges(self, customer_id: str) -> Decimal:
        return sum((with_tax(c, self.taxes[k]) for k, c in self.calls.values() if k == customer_id), Decimal(0))

    def credit(self, customer_id: str) -> Decimal:
        return sum((a for k, a in self.notes.values() if k == customer_id), Decimal(0))


async def rows(svc: CustomerService) -> Rows:
    """Every row of the stream-fed ledger tables as text (`seq` and `updated_at` are versions)."""
    out: Rows = {}
    for table, key in TABLES.items():
        found = await svc.pool.fetch(f"SELECT * FROM {table} ORDER BY {key}")
        out[table] = [tuple(str(v) for k, v in r.items() if k not in ("seq", "updated_at")) for r in found]
    return out


async def settled(svc: CustomerService, ledger: Ledger) -> None:
    """Every call and note sent is on the live ledger."""
    async def done() -> bool:
        calls = await svc.pool.fetchval("SELECT count(*) FROM ledger_calls")
        notes = await svc.pool.fetchval("SELECT count(*) FROM ledger_credit_notes")
        return bool(calls == len(ledger.calls) and notes == len(ledger.notes))

    await wait_for(done, timeout=30, interval=0.05, message="the live ledger never caught up")


async def balances(nc: NatsClient, customers: list[str]) -> dict[str, tuple[str, str, str]]:
    out = {}
    for cid in customers:
        b = await call(nc, "customer.query.balance", {"customer_id": cid})
        d = await call(nc, "customer.query.dial-permission", {"customer_id": cid})
        out[cid] = (b["balance"], b["charges"], d["credit"]["balance"])
    return out


async def setup(nc: NatsClient, svc: CustomerService, ledger: Ledger) -> list[str]:
    customers = []
    for tax in ("10", "19", "0", "7.5"):
        cid = (await create(nc, currency="EUR", tax=tax, debit_limit="100000"))["id"]
        ledger.taxes[cid] = Decimal(tax)
        customers.append(cid)
    await ledger.traffic(customers, 300)
    # what COPY's text format must escape, and numbers written with an exponent
    await ledger.cdr(customers[0], "1E+1", call_id=f"odd\t\\id\n{uuid.uuid4().hex}")
    await ledger.cdr(customers[1], "0E-8")
    await ledger.note(customers[0], "2.50")
    await ledger.note(customers[1], "4")
    await settled(svc, ledger)
    return customers


async def exact(svc: CustomerService, ledger: Ledger) -> None:
    """Every customer's totals on the ledger are exactly what was sent, each call and note once."""
    found = {r["customer_id"]: r for r in await svc.pool.fetch("SELECT * FROM ledger_charges")}
    for cid in ledger.taxes:
        assert found[cid]["charges"] == ledger.charges(cid), cid
        assert found[cid]["credit_notes"] == ledger.credit(cid), cid
        assert found[cid]["calls"] == sum(1 for k, _ in ledger.calls.values() if k == cid), cid


async def test_rebuilt_ledger_equals_the_live_one_row_for_row(
    svc: CustomerService, tool: NatsClient, ledger: Ledger
) -> None:
    nc = tool
    customers = await setup(nc, svc, ledger)
    before, seqs = await rows(svc), dict(await svc.pool.fetch("SELECT customer_id, seq FROM ledger_charges"))
    money = await balances(nc, customers)
    shown: list[tuple[int, int]] = []
    result = await LedgerRebuilder(svc.pool, tool.jetstream(), batch=64,
                                   progress=lambda d, t: shown.append((d, t))).run()
    assert await rows(svc) == before
    assert await balances(nc, customers) == money
    await exact(svc, ledger)
    after = dict(await svc.pool.fetch("SELECT customer_id, seq FROM ledger_charges"))
    assert all(after[c] > seqs[c] for c in seqs), "the rebuilt rows are newer versions"
    assert result.records == len(ledger.calls) and result.notes == len(ledger.notes) and result.skipped >= 6
    assert result.announced == 0  # nothing differed: nothing to tell the dial views
    assert shown and shown[-1][0] == result.messages and len(shown) > 5
    assert shown[-1][0] >= shown[-1][1] >= 300
    indexes = {r["indexname"] for r in await svc.pool.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = ANY($1::text[])", list(TABLES))}
    assert {"ledger_calls_pkey", "ledger_calls_customer", "ledger_credit_notes_customer",
            "ledger_charges_pkey"} <= indexes and not any("__next" in i for i in indexes)
    # the live consumer keeps writing into the switched tables, and the dial views follow
    cid = customers[2]
    await ledger.cdr(cid, "1.25")
    await settled(svc, ledger)

    async def dial_follows() -> bool:
        d = await call(nc, "customer.query.dial-permission", {"customer_id": cid})
        return Decimal(d["credit"]["balance"]) == -ledger.charges(cid)

    await wait_for(dial_follows, timeout=5, message="the dial view did not follow a charge after the switch")


async def test_records_arriving_during_the_rebuild_count_once(
    svc: CustomerService, tool: NatsClient, ledger: Ledger
) -> None:
    nc = tool
    customers = await setup(nc, svc, ledger)

    class LateRecords(LedgerRebuilder):
        """Records the live consumer applies after the rebuild's last catch-up, before its switch-over."""

        async def _switch(self) -> Any:
            await ledger.traffic(customers, 40)
            await settled(svc, ledger)
            late.append(max(r["seq"] for r in await svc.pool.fetch("SELECT seq FROM ledger_checkpoints")))
            return await super()._switch()

    late: list[int] = []
    sending = asyncio.create_task(ledger.traffic(customers, 400))
    await asyncio.sleep(0)
    result = await LateRecords(svc.pool, tool.jetstream(), batch=50).run()
    await sending
    await ledger.note(customers[3], "1.10")
    await settled(svc, ledger)
    assert late[0] > 0 and result.records <= len(ledger.calls)
    live = await rows(svc)
    await exact(svc, ledger)  # each call id once, though the rebuild and the live consumer both saw many
    # a second rebuild on a quiet stream equals the live ledger the first one left, row for row
    await LedgerRebuilder(svc.pool, tool.jetstream(), batch=500).run()
    assert await rows(svc) == live


async def test_the_cli_rebuilds_with_progress_and_says_so(svc: CustomerService, ledger: Ledger) -> None:
    before = await rows(svc)
    env = {**os.environ, "PATCHBAY_NATS_URL": svc.settings.nats_url,
           "PATCHBAY_DATABASE_URL": svc.settings.database_url, "PATCHBAY_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "customer", "rebuild", "ledger", "--batch", "100", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "switched over" in out.decode() and f"{len(ledger.calls):,} calls" in out.decode()
    assert "rebuild ledger" in err.decode() and "msg" in err.decode()  # the progress bar
    assert await rows(svc) == before


async def test_a_wrong_live_total_is_corrected_and_the_dial_check_hears_it(
    svc: CustomerService, tool: NatsClient, ledger: Ledger
) -> None:
    cid = next(iter(ledger.taxes))
    # a consumer bug: the live total is 100 too high, and the dial views were told so
    row = await svc.pool.fetchrow("UPDATE ledger_charges SET charges = charges + 100, seq = seq + 1"
                                  " WHERE customer_id = $1 RETURNING *", cid)
    await tool.publish(LEDGER_CHANGED, orjson.dumps([Charges.of_row(row).item()]))
    right = ledger.credit(cid) - ledger.charges(cid)

    async def dial_shows(balance: Decimal) -> bool:
        d = await call(tool, "customer.query.dial-permission", {"customer_id": cid})
        return abs(Decimal(d["credit"]["balance"]) - balance) < Decimal("0.01")

    await wait_for(lambda: dial_shows(right - 100), timeout=5, message="the wrong total never reached the dial view")
    result = await LedgerRebuilder(svc.pool, tool.jetstream()).run()
    assert result.announced == 1
    await exact(svc, ledger)
    await wait_for(lambda: dial_shows(right), timeout=5, message="the dial view kept the wrong total")


async def test_a_stream_that_lost_its_head_is_refused_and_the_live_ledger_kept(
    svc: CustomerService, tool: NatsClient
) -> None:
    before = await rows(svc)
    js = tool.jetstream()
    await js.purge_stream("CALLS", seq=60)  # messages 1-59 gone (the module's last test: it breaks history)
    with pytest.raises(LedgerRebuildRefused, match="CALLS starts at sequence 60"):
        await LedgerRebuilder(svc.pool, js).run()
    assert await rows(svc) == before
    assert not await svc.pool.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_next'")
    # knowingly (--allow-shrink): switched over to the smaller ledger, saying what it let through
    result = await LedgerRebuilder(svc.pool, js, allow_shrink=True).run()
    assert any("starts at sequence 60" in w for w in result.warnings)
    assert any(w.startswith("ledger_calls: ") for w in result.warnings), result.warnings
    assert len((await rows(svc))["ledger_calls"]) < len(before["ledger_calls"])
