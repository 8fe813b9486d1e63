"""Personal data encrypted in the event store, erased by destroying keys (product.md section 15)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from customer.application.erasure_replay import ErasureLog, erased_on_stream, replay_erasures
from customer.bootstrap import CustomerService, CustomerSettings, start
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.personal_data import ERASED, SubjectErased, contact_subject
from shared.secrets import Sealer

from .conftest import call, create

KEY = Sealer.new_key()
REASON = {"reason": "the person asked to be forgotten"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(nats_url: str, make_database: Any) -> AsyncIterator[CustomerService]:
    settings = CustomerSettings(nats_url=nats_url, database_url=await make_database(), secret_key=KEY)
    svc = await start(settings)
    yield svc
    await svc.stop()


async def dump(pool: asyncpg.Pool) -> str:
    """Every row of every table of the service's schema, as text."""
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE'"
    )
    rows = [await pool.fetch(f'SELECT t::text AS row FROM "{t["table_name"]}" t') for t in tables]
    return "\n".join(r["row"] for batch in rows for r in batch)


async def add_contact(nc: NatsClient, customer_id: str, email: str) -> dict[str, Any]:
    contact = {"name": "Erin Example", "email": email, "mobile": "+14155550123",
               "private_notes": "met at the fair", "ip_whitelist": ["192.0.2.7"]}
    card = await call(nc, "customer.cmd.contact.add", {
        "customer_id": customer_id, "contact": contact, "auto_generate_password": False,
        "password": "a-Long-password-77", "meta": {"command_id": f"add-{uuid.uuid4()}"}})  # a stored reply
    assert "error" not in card, card
    return next(c for c in card["contacts"] if c["email"] == email)


async def test_personal_fields_are_stored_encrypted_and_read_in_plaintext(
    nc: NatsClient, service: CustomerService
) -> None:
    email = f"erin-{uuid.uuid4().hex[:8]}@example.com"
    card = await create(nc, paypal_email=f"pay-{email}", address={"line1": "1 Secret Lane", "city": "Oslo"})
    contact = await add_contact(nc, card["id"], email)
    assert contact["email"] == email and contact["ip_whitelist"] == ["192.0.2.7/32"]
    stored = await service.pool.fetch("SELECT data::text AS d FROM events WHERE stream_id = $1", card["id"])
    text = " ".join(r["d"] for r in stored)
    for plain in (email, "1 Secret Lane", "Erin Example", "192.0.2.7", "met at the fair"):
        assert plain not in text
    assert "enc:v1:" in text and "Oslo" in text  # only the marked fields
    service.commands.cache.forget([card["id"]])  # folded again from the encrypted events
    got = await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": "x"}})
    assert got["paypal_email"] == f"pay-{email}" and got["address"]["line1"] == "1 Secret Lane"
    assert got["contacts"][0]["email"] == email


async def test_erasing_a_contact_destroys_its_key_everywhere(nc: NatsClient, service: CustomerService) -> None:
    email = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    card = await create(nc)
    contact = await add_contact(nc, card["id"], email)
    other = await add_contact(nc, card["id"], f"stays-{uuid.uuid4().hex[:8]}@example.com")
    before = datetime.now(UTC)
    body = {"customer_id": card["id"], "contact_id": contact["id"], "meta": REASON}

    live = await call(nc, "customer.cmd.contact.erase", body)
    assert live["error"]["code"] == "conflict" and "remove it" in live["error"]["message"]
    await call(nc, "customer.cmd.contact.remove", {"customer_id": card["id"], "contact_id": contact["id"]})
    no_reason = await call(nc, "customer.cmd.contact.erase", {**body, "meta": {}})
    assert no_reason["error"]["code"] == "reason_required"
    erased = await call(nc, "customer.cmd.contact.erase", body)
    assert "error" not in erased, erased
    again = await call(nc, "customer.cmd.contact.erase", body)
    assert again["error"]["code"] == "conflict"

    assert email not in await dump(service.pool)
    assert email.encode() not in erased.__repr__().encode()
    as_of = await call(nc, "customer.query.as-of", {"customer_id": card["id"], "at": before.isoformat()})
    gone = next(c for c in as_of["card"]["contacts"] if c["id"] == contact["id"])
    assert gone["email"] == ERASED and gone["name"] == ERASED and gone["ip_whitelist"] == [ERASED]
    kept = next(c for c in as_of["card"]["contacts"] if c["id"] == other["id"])
    assert kept["email"] == other["email"]  # the other contact's key is its own

    # the fence: no key is made again for the erased contact, here or over NATS
    with pytest.raises(SubjectErased):
        await service.commands.store.keys.for_subjects([contact_subject(contact["id"])])  # type: ignore[union-attr]
    keys = await call(nc, "customer.query.data-keys", {"subjects": [contact_subject(contact["id"])]})
    assert keys["keys"] and keys["keys"][0]["key"] is None
    service.commands.store.keys.forget([contact_subject(contact["id"])])  # type: ignore[union-attr]
    with pytest.raises(SubjectErased):
        await service.commands.store.keys.for_subjects([contact_subject(contact["id"])])  # type: ignore[union-attr]


async def test_erasing_a_customer_needs_it_deleted_and_then_refuses_every_change(
    nc: NatsClient, service: CustomerService
) -> None:
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    card = await create(nc, paypal_email=f"pay-{email}", address={"line1": "2 Hidden Road", "city": "Rome"})
    await add_contact(nc, card["id"], email)
    body = {"customer_id": card["id"], "meta": REASON}
    live = await call(nc, "customer.cmd.erase", body)
    assert live["error"]["code"] == "conflict" and "not deleted" in live["error"]["message"]
    await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    erased = await call(nc, "customer.cmd.erase", body)
    assert erased["paypal_email"] == ERASED and erased["address"] == {**card["address"], "line1": ERASED}
    assert erased["contacts"][0]["email"] == ERASED and erased["address"]["city"] == "Rome"
    text = await dump(service.pool)
    assert email not in text and "2 Hidden Road" not in text
    refused = await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": "x"}})
    assert refused["error"]["code"] == "personal_data_erased"
    service.commands.cache.forget([card["id"]])  # a fold with the keys gone reads the same
    await service.commands.cache.ensure([card["id"]])
    assert service.commands.cache.get(card["id"]).card() == {  # type: ignore[union-attr]
        k: v for k, v in erased.items()}
    events = await service.pool.fetch(
        "SELECT type, metadata::text AS m FROM events WHERE stream_id = $1 ORDER BY version", card["id"])
    assert events[-1]["type"] == "CustomerErased" and REASON["reason"] in events[-1]["m"]


async def test_data_keys_answer_by_id_and_subject(nc: NatsClient) -> None:
    card = await create(nc, paypal_email="keys@example.com")
    by_subject = await call(nc, "customer.query.data-keys", {"subjects": [f"customer:{card['id']}"]})
    [item] = by_subject["keys"]
    assert item["key"] and item["subject"] == f"customer:{card['id']}"
    by_id = await call(nc, "customer.query.data-keys", {"key_ids": [item["key_id"], "nope"]})
    assert by_id["keys"] == [item]


async def test_a_restored_database_loses_the_erased_key_again_at_start(
    nc: NatsClient, service: CustomerService
) -> None:
    card = await create(nc)
    contact = await add_contact(nc, card["id"], f"restore-{uuid.uuid4().hex[:8]}@example.com")
    subject = contact_subject(contact["id"])
    backup = await service.pool.fetchrow("SELECT sealed FROM data_keys WHERE subject = $1", subject)
    await call(nc, "customer.cmd.contact.remove", {"customer_id": card["id"], "contact_id": contact["id"]})
    assert "error" not in await call(nc, "customer.cmd.contact.erase",
                                     {"customer_id": card["id"], "contact_id": contact["id"], "meta": REASON})

    async def on_stream() -> bool:
        return subject in await erased_on_stream(service.runtime.js)

    await wait_for(on_stream, timeout=10, message="the ContactErased event on JetStream")
    # the database comes back from a backup taken before the erasure: the key is there again
    await service.pool.execute(
        "UPDATE data_keys SET sealed = $2, erased_at = NULL WHERE subject = $1", subject, backup["sealed"])
    assert await replay_erasures(service.runtime.js, service.pool) == 1
    row = await service.pool.fetchrow("SELECT sealed, erased_at FROM data_keys WHERE subject = $1", subject)
    assert row["sealed"] is None and row["erased_at"] is not None
    assert await replay_erasures(service.runtime.js, service.pool) == 0


async def test_the_erasure_log_outlives_a_restore_of_both_database_and_stream(
    nc: NatsClient, service: CustomerService, tmp_path: Path
) -> None:
    erasure_log = ErasureLog(tmp_path / "erasures.jsonl")
    card = await create(nc)
    contact = await add_contact(nc, card["id"], f"log-{uuid.uuid4().hex[:8]}@example.com")
    subject = contact_subject(contact["id"])
    backup = await service.pool.fetchrow("SELECT sealed FROM data_keys WHERE subject = $1", subject)
    erasure_log.append([subject])  # what the service writes after the erase statement commits
    # both restored from before the erasure: the key is back and no erase event is on the stream
    await service.pool.execute(
        "INSERT INTO data_keys (subject, key_id, sealed) VALUES ($1, 'restored', $2)"
        " ON CONFLICT (subject) DO UPDATE SET sealed = $2, erased_at = NULL", subject, backup["sealed"])
    assert subject not in await erased_on_stream(service.runtime.js)
    assert await replay_erasures(service.runtime.js, service.pool, erasure_log) == 1
    row = await service.pool.fetchrow("SELECT sealed FROM data_keys WHERE subject = $1", subject)
    assert row["sealed"] is None
