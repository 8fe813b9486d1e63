"""Customer commands over NATS against real servers: rules, idempotency, concurrency."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from customer.bootstrap import CustomerService
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient

from .conftest import call, create


async def count_events(service: CustomerService, stream_id: str) -> int:
    return int(await service.pool.fetchval("SELECT count(*) FROM events WHERE stream_id=$1", stream_id))


async def test_create_returns_the_whole_card(nc: NatsClient) -> None:
    card = await create(
        nc, currency="gbp", tags=["b", "a"], debit_limit="-25.5", tax="20",
        address={"city": "Leeds", "country": "gb"}, config_toml="[limits]\nmax = 3\n",
        verification={"email_required": True}, notes="private",
    )
    assert uuid.UUID(card["id"]).version == 7
    assert card["currency"] == "GBP" and card["tags"] == ["a", "b"]
    assert card["debit_limit"] == "-25.5" and card["address"]["country"] == "GB"
    assert card["config"] == {"limits": {"max": 3}}
    assert card["version"] == 1 and card["status"] == "active"
    got = await call(nc, "customer.query.get", {"customer_id": card["id"]})
    assert got == card


async def test_retried_command_appends_nothing(nc: NatsClient, service: CustomerService) -> None:
    key = str(uuid.uuid4())
    body = {"meta": {"command_id": key}, "customer": {"name": f"idem-{key[:8]}"}}
    first = await call(nc, "customer.cmd.create", body)
    again = await asyncio.gather(*[call(nc, "customer.cmd.create", body) for _ in range(5)])
    assert all(a == first for a in again)
    assert await count_events(service, first["id"]) == 1
    update = {"meta": {"command_id": f"u-{key}"}, "customer_id": first["id"], "changes": {"channels": 3}}
    one = await call(nc, "customer.cmd.update", update)
    two = await call(nc, "customer.cmd.update", update)
    assert one == two and one["version"] == 2
    assert await count_events(service, first["id"]) == 2
    # a retry that reaches a replica (or a restarted process) that never saw the first answer
    service.commands.recent = type(service.commands.recent)()
    service.commands.cache.forget([first["id"]])
    together = await asyncio.gather(
        call(nc, "customer.cmd.update", update), call(nc, "customer.cmd.create", body),
        create(nc), create(nc),
    )
    assert together[0] == one and together[1] == first
    assert await count_events(service, first["id"]) == 2


async def test_names_are_unique_case_insensitively_among_live_customers(nc: NatsClient) -> None:
    name = f"Unique {uuid.uuid4().hex[:6]}"
    card = await create(nc, name)
    dup = await call(nc, "customer.cmd.create", {"customer": {"name": f"  {name.upper()} "}})
    assert dup["error"]["code"] == "name_taken"
    other = await create(nc)
    renamed = await call(nc, "customer.cmd.update", {"customer_id": other["id"], "changes": {"name": name.lower()}})
    assert renamed["error"]["code"] == "name_taken"
    await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    again = await create(nc, name.lower())
    assert again["name"] == name.lower()


async def test_concurrent_duplicate_names_one_wins(nc: NatsClient) -> None:
    name = f"race-{uuid.uuid4().hex[:6]}"
    replies = await asyncio.gather(*[call(nc, "customer.cmd.create", {"customer": {"name": name}}) for _ in range(8)])
    winners = [r for r in replies if "id" in r]
    assert len(winners) == 1
    assert {r["error"]["code"] for r in replies if "error" in r} == {"name_taken"}


async def test_two_writers_at_one_version_exactly_one_wins(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    replies = await asyncio.gather(*[
        call(nc, "customer.cmd.update",
             {"customer_id": card["id"], "expected_version": 1, "changes": {"channels": n}})
        for n in range(1, 6)
    ])
    ok = [r for r in replies if "version" in r]
    assert len(ok) == 1 and ok[0]["version"] == 2
    assert all(r["error"]["code"] == "version_mismatch" for r in replies if "error" in r)
    assert await count_events(service, card["id"]) == 2


async def test_updates_without_expected_version_all_apply(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    tags = [f"t{n}" for n in range(10)]
    replies = await asyncio.gather(*[
        call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": t}}) for t in tags
    ])
    assert all("version" in r for r in replies)
    final = await call(nc, "customer.query.get", {"customer_id": card["id"]})
    assert final["version"] == 11
    assert await count_events(service, card["id"]) == 11


async def test_stale_cache_in_another_replica_is_retried(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    # another replica wrote version 2 behind this one's back
    stale = service.commands.cache.get(card["id"])
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 7}})
    service.commands.cache.put(card["id"], stale)
    reply = await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"cps": "3"}})
    assert reply["version"] == 3 and reply["channels"] == 7 and reply["cps"] == "3"


async def test_update_holds_old_and_new_values(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc, channels=2)
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 9, "notes": ""}})
    data = json.loads(await service.pool.fetchval(
        "SELECT data::text FROM events WHERE stream_id=$1 AND version=2", card["id"]
    ))
    assert data == {"changes": {"channels": {"old": 2, "new": 9}}}


async def test_every_rule_has_a_typed_error(nc: NatsClient) -> None:
    card = await create(nc, currency="EUR")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("customer.cmd.create", {"customer": {"name": ""}}, "validation_error"),
        ("customer.cmd.create", {"customer": {"name": "x", "currency": "EURO"}}, "validation_error"),
        ("customer.cmd.create", {"customer": {"name": "x", "config_toml": "= nope"}}, "validation_error"),
        ("customer.cmd.create", {"customer": {"name": "x", "status": "penalty"}}, "validation_error"),
        ("customer.cmd.create", {"nonsense": True}, "validation_error"),
        ("customer.cmd.update", {"customer_id": card["id"], "changes": {"currency": "USD"}}, "currency_immutable"),
        ("customer.cmd.update", {"customer_id": str(uuid.uuid4()), "changes": {"channels": 1}}, "not_found"),
        ("customer.cmd.update", {"customer_id": "not-a-uuid", "changes": {}}, "validation_error"),
        ("customer.cmd.set-status", {"customer_id": card["id"], "status": "penalty"}, "validation_error"),
        ("customer.query.get", {"customer_id": str(uuid.uuid4())}, "not_found"),
        ("customer.query.list", {"sort": "nope"}, "validation_error"),
        ("customer.query.list", {"cursor": "garbage"}, "validation_error"),
    ]
    for subject, payload, code in cases:
        reply = await call(nc, subject, payload)
        assert reply.get("error", {}).get("code") == code, (subject, payload, reply)
    bad = await nc.request("customer.cmd.create", b"{not json", timeout=5)
    assert b"validation_error" in bad.data


async def test_deleted_customer_is_gone_but_its_events_stay(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    deleted = await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    assert deleted["deleted"] is True
    got = await call(nc, "customer.query.get", {"customer_id": card["id"]})
    assert got["error"]["code"] == "customer_deleted"
    again = await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 1}})
    assert again["error"]["code"] == "customer_deleted"
    assert await count_events(service, card["id"]) == 2


async def test_penalty_returns_to_active_by_itself(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    until = datetime.now(UTC) + timedelta(seconds=1)
    penalised = await call(nc, "customer.cmd.set-status",
                           {"customer_id": card["id"], "status": "penalty", "until": until.isoformat()})
    assert penalised["status"] == "penalty"

    async def active() -> bool:
        got = await call(nc, "customer.query.get", {"customer_id": card["id"]})
        return bool(got["status"] == "active" and got["penalty_until"] is None)

    await wait_for(active, timeout=10, message="penalty never expired")
    meta = await service.pool.fetchval(
        "SELECT metadata::text FROM events WHERE stream_id=$1 AND version=3", card["id"]
    )
    assert '"kind": "system"' in meta


async def test_reason_required_when_the_audit_setting_is_on(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    on = await call(nc, "customer.cmd.settings.audit", {"require_reason": True})
    assert on["require_reason"] is True
    try:
        refused = await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 4}})
        assert refused["error"]["code"] == "reason_required"
        ok = await call(nc, "customer.cmd.update", {
            "meta": {"reason": "customer asked for more channels"},
            "customer_id": card["id"], "changes": {"channels": 4},
        })
        assert ok["version"] == 2
        meta = await service.pool.fetchval(
            "SELECT metadata::text FROM events WHERE stream_id=$1 AND version=2", card["id"]
        )
        assert "customer asked for more channels" in meta
    finally:
        await call(nc, "customer.cmd.settings.audit", {"require_reason": False})


async def test_the_worker_counts_its_batches_and_its_waits_on_the_append(nc: NatsClient) -> None:
    from customer.application.commands import APPEND_SECONDS, BATCHED, BATCHES

    before = (BATCHES._value.get(), BATCHED._value.get(), APPEND_SECONDS._value.get())
    cards = await asyncio.gather(*[create(nc) for _ in range(12)])
    assert len({c["id"] for c in cards}) == 12
    batches, batched, waited = (BATCHES._value.get() - before[0], BATCHED._value.get() - before[1],
                                APPEND_SECONDS._value.get() - before[2])
    assert 1 <= batches <= 12 and batched == 12  # concurrent creates share batches
    assert waited > 0


async def test_concurrent_updates_of_one_customer_each_build_on_the_one_before(
        nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    first, second = await asyncio.gather(
        call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"channels": 5}}),
        call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": "again"}}))
    assert sorted([first["version"], second["version"]]) == [2, 3]
    final = await call(nc, "customer.query.get", {"customer_id": card["id"]})
    assert final["version"] == 3 and final["channels"] == 5 and final["notes"] == "again"
    assert await count_events(service, card["id"]) == 3
