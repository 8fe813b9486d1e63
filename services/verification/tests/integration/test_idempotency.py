"""A request retried with the same meta.command_id (its reply was lost) gets its first answer again."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from shared.contracts.notify import SystemMessage
from shared.secrets import Sealer
from verification.bootstrap import VerificationSettings
from verification.bootstrap import start as start_verification

KEY = Sealer.new_key()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(nats_url: str, make_database: Any) -> AsyncIterator[None]:
    db = await make_database()
    customer = await start_customer(CustomerSettings(nats_url=nats_url, database_url=db, secret_key=KEY))
    verification = await start_verification(VerificationSettings(nats_url=nats_url, database_url=db,
                                                                 secret_key=KEY))
    yield
    await verification.stop()
    await customer.stop()


async def call(nc: NatsClient, subject: str, body: dict[str, Any]) -> Any:
    return json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=5)).data)


async def test_a_retried_request_and_confirmation_answer_as_the_first(running: None, nats: NatsClient) -> None:
    notes: list[SystemMessage] = []
    calls: list[dict[str, Any]] = []

    async def on_notify(msg: Msg) -> None:
        notes.append(SystemMessage.model_validate_json(msg.data))

    async def on_call(msg: Msg) -> None:
        calls.append(json.loads(msg.data))
        await msg.respond(b'{"accepted":true}')

    subs = [await nats.subscribe("notify.>", cb=on_notify),
            await nats.subscribe("switch.testcall.request", cb=on_call)]
    await nats.flush()
    try:
        card = await call(nats, "customer.cmd.create", {"customer": {"name": f"i-{uuid.uuid4().hex[:8]}"}})
        contact = {"name": "Ann", "email": f"i-{uuid.uuid4().hex[:8]}@example.com", "mobile": "+14155550123"}
        card = await call(nats, "customer.cmd.contact.add", {"customer_id": card["id"],
                                                             "password": "portal-Password-0001", "contact": contact})
        who = {"customer_id": card["id"], "contact_id": card["contacts"][0]["id"]}
        request = {"caller": who, "channel": "email", "meta": {"command_id": "req-1"}}
        first = await call(nats, "verification.cmd.request-code", request)
        again = await call(nats, "verification.cmd.request-code", request)
        assert again == first
        mine = f"verification:{first['verification_id']}"
        note = await wait_for(lambda: next((n for n in notes if n.notification_id == mine), None))
        assert note is not None and note.sealed_secret is not None
        code = Sealer(KEY).unseal(note.sealed_secret)
        other = await call(nats, "verification.cmd.request-code", request | {"channel": "mobile"})
        assert other["error"]["code"] == "conflict" and other["error"]["details"][0]["field"] == "Idempotency-Key"

        confirm = {"caller": who, "channel": "email", "code": code, "meta": {"command_id": "confirm-1"}}
        done = await call(nats, "verification.cmd.confirm-code", confirm)
        assert done["verified"] is True
        assert await call(nats, "verification.cmd.confirm-code", confirm) == done
        reused = await call(nats, "verification.cmd.confirm-code", confirm | {"meta": {"command_id": "confirm-2"}})
        assert reused["error"]["code"] == "conflict" and reused["error"]["details"] == []  # the code is used
        wrong = str((int(code) + 1) % 1_000_000).zfill(6)
        for key_reused in (confirm | {"code": wrong}, confirm | {"meta": {"command_id": "req-1"}},
                           request | {"meta": {"command_id": "confirm-1"}}):
            subject = "request-code" if "code" not in key_reused else "confirm-code"
            answer = await call(nats, f"verification.cmd.{subject}", key_reused)
            assert answer["error"]["details"][0]["field"] == "Idempotency-Key", (key_reused, answer)
        assert [n.notification_id for n in notes].count(mine) == 1

        cli = {"caller": who, "number": "+442079460123", "meta": {"command_id": "cli-1"}}
        started = await call(nats, "verification.cmd.start-cli", cli)
        assert await call(nats, "verification.cmd.start-cli", cli) == started
        assert len(calls) == 1, "a retried test call request rang the number twice"
    finally:
        for sub in subs:
            await sub.unsubscribe()
