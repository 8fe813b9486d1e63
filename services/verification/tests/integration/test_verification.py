"""The verification service with the real customer service, NATS and PostgreSQL, and a fake switch."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from shared.contracts.notify import SystemMessage
from shared.secrets import Sealer
from verification.bootstrap import VerificationRuntime, VerificationSettings
from verification.bootstrap import start as start_verification

KEY = Sealer.new_key()
PASSWORD = "portal-Password-0001"


class Clock:
    """A clock the test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(nats_url: str, make_database: Any) -> AsyncIterator[tuple[CustomerService, VerificationRuntime]]:
    db = await make_database()
    customer = await start_customer(CustomerSettings(nats_url=nats_url, database_url=db, secret_key=KEY))
    verification = await start_verification(VerificationSettings(
        nats_url=nats_url, database_url=db, secret_key=KEY, code_requests_per_window=4,
        request_timeout_s=1.0))
    verification.service.clock = Clock()
    yield customer, verification
    await verification.stop()
    await customer.stop()


class World:
    """What the test sees: NOTIFY messages, test-call requests, and a client."""

    def __init__(self, nc: NatsClient, runtime: VerificationRuntime) -> None:
        self.nc = nc
        self.runtime = runtime
        self.notes: list[SystemMessage] = []
        self.calls: list[dict[str, Any]] = []
        self.subs: dict[str, Subscription] = {}

    async def on_notify(self, msg: Msg) -> None:
        self.notes.append(SystemMessage.model_validate_json(msg.data))

    async def on_call(self, msg: Msg) -> None:
        self.calls.append(json.loads(msg.data))
        await msg.respond(b'{"accepted":true}')

    async def call(self, subject: str, body: dict[str, Any]) -> Any:
        msg = await self.nc.request(subject, json.dumps(body).encode(), timeout=5)
        return json.loads(msg.data)

    def code_of(self, verification_id: str) -> str | None:
        for note in self.notes:
            if note.notification_id == f"verification:{verification_id}" and note.sealed_secret:
                return Sealer(KEY).unseal(note.sealed_secret)
        return None

    async def customer(self, **fields: Any) -> tuple[str, dict[str, Any]]:
        card = await self.call("customer.cmd.create", {"customer": {"name": f"v-{uuid.uuid4().hex[:8]}",
                                                                 "debit_limit": "100", **fields}})
        contact = {"name": "Ann", "email": f"v-{uuid.uuid4().hex[:8]}@example.com", "mobile": "+14155550123"}
        card = await self.call("customer.cmd.contact.add", {"customer_id": card["id"], "password": PASSWORD,
                                                             "contact": contact})
        return card["id"], card["contacts"][0]


@pytest_asyncio.fixture(loop_scope="session")
async def world(services: tuple[CustomerService, VerificationRuntime], nats: NatsClient) -> AsyncIterator[World]:
    w = World(nats, services[1])
    w.subs = {"notify": await nats.subscribe("notify.>", cb=w.on_notify),
              "switch": await nats.subscribe("switch.testcall.request", cb=w.on_call)}
    await nats.flush()

    async def answers() -> bool:
        reply = await w.call("verification.cmd.confirm-link", {"verification_id": str(uuid.uuid4()), "code": "1"})
        return reply["error"]["code"] == "code_not_requested"

    await wait_for(answers, message="verification service answering")
    yield w
    for sub in w.subs.values():
        await sub.unsubscribe()


def caller(customer_id: str, contact: dict[str, Any]) -> dict[str, Any]:
    return {"customer_id": customer_id, "contact_id": contact["id"], "ip": "127.0.0.1"}


async def test_email_code_wrong_five_times_locks_then_a_new_code_verifies(world: World) -> None:
    cid, contact = await world.customer(verification={"email_required": True})
    who = caller(cid, contact)
    sent = await world.call("verification.cmd.request-code", {"caller": who, "channel": "email"})
    assert sent["target"] == contact["email"] and sent["attempts_left"] == 5
    code = await wait_for(lambda: world.code_of(sent["verification_id"]))
    note = next(n for n in world.notes if n.notification_id == f"verification:{sent['verification_id']}")
    assert note.subject.startswith("notify.email.email_code.") and note.to == contact["email"]
    assert note.variables["link_base"].endswith(f"verification_id={sent['verification_id']}&code=")
    assert code not in note.model_dump_json().replace(note.sealed_secret or "", "")
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    answers = [await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "email", "code": wrong})
               for _ in range(5)]
    assert [a["error"]["code"] for a in answers] == ["code_invalid"] * 4 + ["code_locked"]
    assert answers[3]["error"]["message"].endswith("1 try left")
    right = await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "email", "code": code})
    assert right["error"]["code"] == "code_locked"
    again = await world.call("verification.cmd.request-code", {"caller": who, "channel": "email"})
    new = await wait_for(lambda: world.code_of(again["verification_id"]))
    ok = await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "email", "code": new})
    assert ok["verified"] is True

    async def dial_allowed() -> bool:
        return bool((await world.call("customer.query.dial-permission", {"customer_id": cid}))["allowed"])

    await wait_for(dial_allowed, message="e-mail verified on the card")
    used = await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "email", "code": new})
    assert used["error"]["code"] == "conflict"


async def test_mobile_code_expires_and_link_confirms_email(world: World) -> None:
    cid, contact = await world.customer()
    who = caller(cid, contact)
    sent = await world.call("verification.cmd.request-code", {"caller": who, "channel": "mobile"})
    code = await wait_for(lambda: world.code_of(sent["verification_id"]))
    assert any(n.subject.startswith("notify.sms.mobile_code.") and n.to == "+14155550123" for n in world.notes)
    clock = world.runtime.service.clock
    assert isinstance(clock, Clock)
    clock.offset = timedelta(minutes=10, seconds=1)
    try:
        late = await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "mobile", "code": code})
    finally:
        clock.offset = timedelta(0)
    assert late["error"]["code"] == "code_expired"
    mail = await world.call("verification.cmd.request-code", {"caller": who, "channel": "email"})
    mail_code = await wait_for(lambda: world.code_of(mail["verification_id"]))
    bad = await world.call("verification.cmd.confirm-link", {"verification_id": mail["verification_id"], "code": "x"})
    assert bad["error"]["code"] == "code_invalid"
    ok = await world.call("verification.cmd.confirm-link", {"verification_id": mail["verification_id"],
                                                             "code": mail_code})
    assert ok["verified"] is True

    async def verified() -> bool:
        card = await world.call("customer.query.get", {"customer_id": cid})
        return bool(card["contacts"][0]["email_verified"])

    await wait_for(verified)


async def test_concurrent_confirmations_exactly_one_succeeds(world: World) -> None:
    cid, contact = await world.customer()
    who = caller(cid, contact)
    sent = await world.call("verification.cmd.request-code", {"caller": who, "channel": "email"})
    code = await wait_for(lambda: world.code_of(sent["verification_id"]))
    body = {"caller": who, "channel": "email", "code": code}
    replies = await asyncio.gather(*[world.call("verification.cmd.confirm-code", body) for _ in range(8)])
    assert sum(1 for r in replies if r.get("verified")) == 1
    assert {r["error"]["code"] for r in replies if "error" in r} == {"conflict"}


async def test_cli_test_call_then_confirm_approves_the_cli(world: World) -> None:
    cid, contact = await world.customer(verification={"approved_clis_only": True})
    who = caller(cid, contact)
    denied = await world.call("customer.query.dial-permission", {"customer_id": cid, "cli": "+442079460123"})
    assert denied["reasons"] == ["cli_not_approved"]
    started = await world.call("verification.cmd.start-cli", {"caller": who, "number": "+44 20 7946 0123"})
    assert started["target"] == "+442079460123"
    [request] = [c for c in world.calls if c["customer_id"] == cid]
    assert request["number"] == "+442079460123" and len(request["code"]) == 6
    other = await world.call("verification.cmd.confirm-cli", {"caller": who, "number": "+442079460999",
                                                              "code": request["code"]})
    assert other["error"]["code"] == "code_not_requested"
    ok = await world.call("verification.cmd.confirm-cli", {"caller": who, "number": "+442079460123",
                                                           "code": request["code"]})
    assert ok["verified"] is True

    async def allowed() -> bool:
        reply = await world.call("customer.query.dial-permission", {"customer_id": cid, "cli": "+442079460123"})
        return bool(reply["allowed"])

    await wait_for(allowed, message="CLI approved on the card")


async def test_requests_are_rate_limited_and_sessions_checked(world: World) -> None:
    cid, contact = await world.customer()
    who = caller(cid, contact)
    replies = [await world.call("verification.cmd.request-code", {"caller": who, "channel": "email"})
               for _ in range(5)]
    assert "error" not in replies[3] and replies[4]["error"]["code"] == "rate_limited"
    other_cid, _ = await world.customer()
    stranger = await world.call("verification.cmd.request-code", {"caller": caller(other_cid, contact),
                                                                  "channel": "email"})
    assert stranger["error"]["code"] == "unauthenticated"
    # the code of a superseded request no longer works
    first = await wait_for(lambda: world.code_of(replies[0]["verification_id"]))
    latest = await wait_for(lambda: world.code_of(replies[3]["verification_id"]))
    if first != latest:
        stale = await world.call("verification.cmd.confirm-code", {"caller": who, "channel": "email", "code": first})
        assert stale["error"]["code"] == "code_invalid"


async def test_no_switch_means_a_clear_error(world: World, nats: NatsClient) -> None:
    cid, contact = await world.customer()
    await world.subs.pop("switch").unsubscribe()
    await nats.flush()
    reply = await world.call("verification.cmd.start-cli", {"caller": caller(cid, contact), "number": "+14155550100"})
    assert reply["error"]["code"] == "unavailable"
    bad = await world.call("verification.cmd.start-cli", {"caller": caller(cid, contact), "number": "12"})
    assert bad["error"]["code"] == "validation_error" and bad["error"]["details"][0]["field"] == "number"
