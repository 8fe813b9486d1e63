"""Bulk upload over NATS (begin, stage, commit, results), against real servers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from customer.bootstrap import CustomerService
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient

from .conftest import call, create

pytestmark = pytest.mark.servers


def rows(*datas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"row": i + 1, "data": d} for i, d in enumerate(datas)]


def good(prefix: str = "bulk") -> dict[str, Any]:
    return {"name": f"{prefix}-{uuid.uuid4().hex[:10]}", "currency": "EUR"}


async def upload(
    nc: NatsClient, staged: list[dict[str, Any]], mode: str = "all_or_nothing", chunk: int = 500,
    **meta: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    upload_id = str(uuid.uuid4())
    begun = await call(nc, "customer.cmd.bulk.begin", {"upload_id": upload_id, "mode": mode, "meta": meta})
    assert begun["state"] == "staging", begun
    for i in range(0, len(staged), chunk):
        reply = await call(nc, "customer.cmd.bulk.stage", {"upload_id": upload_id, "rows": staged[i:i + chunk]})
        assert "error" not in reply, reply
    summary = await call(nc, "customer.cmd.bulk.commit", {"upload_id": upload_id, "meta": meta}, timeout=60)
    results: list[dict[str, Any]] = []
    after = 0
    while after is not None:
        page = await call(nc, "customer.query.bulk.results", {"upload_id": upload_id, "after_row": after, "limit": 2000})
        results += page["items"]
        after = page["next_after_row"]
    return summary, results


async def live_count(service: CustomerService, names: list[str]) -> int:
    return int(await service.pool.fetchval(
        "SELECT count(*) FROM customers WHERE name = ANY($1::text[]) AND NOT deleted", names))


async def test_all_or_nothing_with_one_bad_row_creates_nothing(nc: NatsClient, service: CustomerService) -> None:
    datas = [good() for _ in range(5)]
    datas[3] = {**datas[3], "tax": "150", "address": {"country": "XX"}}
    summary, results = await upload(nc, rows(*datas))
    assert summary["state"] == "rejected" and summary["created"] == 0 and summary["failed"] == 1
    assert [r["status"] for r in results] == ["not_created"] * 3 + ["failed", "not_created"]
    bad = results[3]
    assert bad["row"] == 4 and bad["id"] is None
    assert {e["field"] for e in bad["errors"]} == {"tax", "address.country"}
    assert await live_count(service, [d["name"] for d in datas]) == 0


async def test_best_effort_creates_the_good_rows(nc: NatsClient, service: CustomerService) -> None:
    datas = [good() for _ in range(4)]
    datas[1] = {"name": datas[1]["name"]}  # no currency
    datas[2] = {**datas[2], "channels": "1e3"}
    summary, results = await upload(nc, rows(*datas), mode="best_effort")
    assert summary["state"] == "committed" and summary["created"] == 2 and summary["failed"] == 2
    assert [r["status"] for r in results] == ["created", "failed", "failed", "created"]
    assert results[1]["errors"][0]["field"] == "currency"
    assert results[2]["errors"][0]["field"] == "channels"
    assert "scientific" in results[2]["errors"][0]["message"]
    card = await call(nc, "customer.query.get", {"customer_id": results[0]["id"]})
    assert card["name"] == datas[0]["name"] and card["currency"] == "EUR" and card["version"] == 1


async def test_scientific_notation_is_refused_in_every_number(nc: NatsClient) -> None:
    datas = [{**good(), field: value} for field, value in
             [("tax", "1e1"), ("debit_limit", "-2E3"), ("cps", "1e0"), ("minimum_payment", "5e-1"),
              ("channels", "3e2")]]
    _, results = await upload(nc, rows(*datas), mode="best_effort")
    assert [r["errors"][0]["field"] for r in results] == ["tax", "debit_limit", "cps", "minimum_payment", "channels"]
    assert all("scientific" in r["errors"][0]["message"] for r in results)


async def test_duplicate_names_in_the_file_and_against_live_customers(nc: NatsClient, service: CustomerService) -> None:
    existing = await create(nc)
    twin = good()
    datas = [twin, {**good(), "name": existing["name"].upper()}, {**twin, "name": "  " + twin["name"].upper()}, good()]
    summary, results = await upload(nc, rows(*datas), mode="best_effort")
    assert summary["created"] == 2
    assert results[0]["status"] == "created"
    assert results[1]["errors"][0]["type"] == "name_taken" and "another customer" in results[1]["errors"][0]["message"]
    assert results[2]["errors"][0] == {"field": "name", "type": "name_taken",
                                       "message": "the same name (case-insensitively) is already in row 1"}
    rejected, _ = await upload(nc, rows({**good(), "name": existing["name"]}, good()))
    assert rejected["state"] == "rejected"


async def test_events_share_the_correlation_id_and_reach_the_stream(nc: NatsClient, service: CustomerService) -> None:
    cid = f"bulk-{uuid.uuid4().hex}"
    datas = [good() for _ in range(20)]
    summary, results = await upload(nc, rows(*datas), correlation_id=cid)
    assert summary["created"] == 20 and summary["correlation_id"] == cid
    ids = [r["id"] for r in results]
    metas = await service.pool.fetch(
        "SELECT metadata->>'correlation_id' AS c FROM events WHERE stream_id = ANY($1::text[])", ids)
    assert len(metas) == 20 and {m["c"] for m in metas} == {cid}

    async def published() -> bool:
        return not await service.pool.fetchval(
            "SELECT count(*) FROM outbox o JOIN events e USING (position) WHERE e.stream_id = ANY($1::text[])", ids)

    await wait_for(published, timeout=10, message="bulk events never left the outbox")
    # the created customers take single commands like any other
    changed = await call(nc, "customer.cmd.update", {"customer_id": ids[0], "changes": {"channels": 4}})
    assert changed["version"] == 2 and changed["channels"] == 4


async def test_uploaded_customers_reach_this_process_dial_answers(nc: NatsClient, service: CustomerService) -> None:
    # the upload's events skip the command core's state cache; the service's connection has
    # no_echo, so its own relay (not the echo of what it published) tells the dial feed
    summary, results = await upload(nc, rows(good("dial"), good("dial")))
    assert summary["created"] == 2
    ids = [r["id"] for r in results]

    async def answered() -> bool:
        replies = [await nc.request("customer.query.dial-permission",
                                    json.dumps({"customer_id": i}).encode(), timeout=2) for i in ids]
        return all(json.loads(r.data)["reasons"] != ["not_found"] for r in replies)

    await wait_for(answered, timeout=10, message="uploaded customers never reached the dial views")


async def test_commit_is_idempotent_and_begin_answers_a_committed_upload(nc: NatsClient) -> None:
    upload_id = str(uuid.uuid4())
    await call(nc, "customer.cmd.bulk.begin", {"upload_id": upload_id})
    await call(nc, "customer.cmd.bulk.stage", {"upload_id": upload_id, "rows": rows(good(), good())})
    first, second = await asyncio.gather(
        call(nc, "customer.cmd.bulk.commit", {"upload_id": upload_id}),
        call(nc, "customer.cmd.bulk.commit", {"upload_id": upload_id}))
    assert first == second and first["created"] == 2
    again = await call(nc, "customer.cmd.bulk.begin", {"upload_id": upload_id})
    assert again["state"] == "committed" and again["created"] == 2
    late = await call(nc, "customer.cmd.bulk.stage", {"upload_id": upload_id, "rows": rows(good())})
    assert late["error"]["code"] == "conflict"


async def test_a_few_thousand_rows(nc: NatsClient, service: CustomerService) -> None:
    prefix = f"many-{uuid.uuid4().hex[:6]}"
    datas = [{"name": f"{prefix}-{i}", "currency": "USD", "tags": ["bulk"], "tax": "7.5",
              "address": {"city": "Leeds", "country": "GB"}} for i in range(3000)]
    summary, results = await upload(nc, rows(*datas), chunk=1000)
    assert summary["created"] == 3000 and len(results) == 3000
    assert len({r["id"] for r in results}) == 3000
    assert await service.pool.fetchval("SELECT count(*) FROM customers WHERE name LIKE $1", f"{prefix}-%") == 3000


async def test_a_name_taken_between_check_and_insert_rolls_back_and_checks_again(
    nc: NatsClient, service: CustomerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from customer.application import bulk_upload_sql
    from customer.application.bulk_upload import BulkUploads
    from shared.contracts.bulk import BeginUpload, CommitUpload, StageRows

    uploads = BulkUploads(service.commands.store, service.commands.settings)
    taken = await create(nc)
    fresh = good()
    upload_id = uuid.uuid4()
    await uploads.begin(BeginUpload(upload_id=upload_id, mode="best_effort"))
    await uploads.stage(StageRows.model_validate(
        {"upload_id": upload_id, "rows": rows(fresh, {**good(), "name": taken["name"]})}))
    real_check, attempts = bulk_upload_sql.NAME_TAKEN, []
    real_commit = uploads._commit_once

    async def commit_once(*args: Any) -> bytes:
        # the first attempt misses the live name, as if a create committed right after the check
        attempts.append(1)
        monkeypatch.setattr(bulk_upload_sql, "NAME_TAKEN", "SELECT $1::uuid" if len(attempts) == 1 else real_check)
        return await real_commit(*args)

    monkeypatch.setattr(uploads, "_commit_once", commit_once)
    summary = json.loads(await uploads.commit(CommitUpload(upload_id=upload_id)))
    assert len(attempts) == 2
    assert summary["created"] == 1 and summary["failed"] == 1
    assert await live_count(service, [fresh["name"]]) == 1


async def test_uploads_older_than_the_retention_are_forgotten(nc: NatsClient, service: CustomerService) -> None:
    from datetime import timedelta

    from customer.application.bulk_upload import BulkUploads
    from shared.contracts.bulk import BeginUpload

    old, _ = await upload(nc, rows(good()))
    await service.pool.execute("UPDATE bulk_uploads SET started_at = now() - interval '8 days' WHERE id = $1",
                               uuid.UUID(old["upload_id"]))
    await BulkUploads(service.commands.store, service.commands.settings, keep=timedelta(days=7)).begin(
        BeginUpload(upload_id=uuid.uuid4()))
    assert await service.pool.fetchval("SELECT count(*) FROM bulk_rows WHERE upload_id = $1",
                                       uuid.UUID(old["upload_id"])) == 0
    gone = await call(nc, "customer.query.bulk.results", {"upload_id": old["upload_id"]})
    assert gone["error"]["code"] == "not_found"
