"""Contacts, passwords, portal access, verification outcomes and dial permission, over NATS, real servers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings, start
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from shared.contracts.notify import SystemMessage
from shared.envelope import Actor, EventEnvelope, Metadata
from shared.secrets import Sealer

from .conftest import call, create

KEY = Sealer.new_key()
TYPED = "typed-Password-0042"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(nats_url: str, make_database: Any) -> AsyncIterator[CustomerService]:
    settings = CustomerSettings(nats_url=nats_url, database_url=await make_database(), secret_key=KEY)
    svc = await start(settings)
    yield svc
    await svc.stop()


class Outbox:
    """Watches NOTIFY as the notifier would see it (a plain subscription; the work queue is left alone)."""

    def __init__(self) -> None:
        self.messages: list[SystemMessage] = []

    async def on(self, msg: Msg) -> None:
        self.messages.append(SystemMessage.model_validate_json(msg.data))

    def password_for(self, contact_id: str, template: str = "contact_password") -> str | None:
        for m in self.messages:
            if str(m.contact_id) == contact_id and m.template == template and m.sealed_secret:
                return Sealer(KEY).unseal(m.sealed_secret)
        return None


@pytest_asyncio.fixture(loop_scope="session")
async def notify(nc: NatsClient) -> AsyncIterator[Outbox]:
    box = Outbox()
    sub = await nc.subscribe("notify.>", cb=box.on)
    await nc.flush()
    yield box
    await sub.unsubscribe()


def email() -> str:
    return f"c-{uuid.uuid4().hex[:10]}@example.com"


async def add_contact(nc: NatsClient, customer_id: str, **body: Any) -> dict[str, Any]:
    contact = {"name": "Ann", "email": email()} | body.pop("contact", {})
    card = await call(nc, "customer.cmd.contact.add", {"customer_id": customer_id, "contact": contact, **body})
    assert "error" not in card, card
    return next(c for c in card["contacts"] if c["email"] == contact["email"])


async def login(nc: NatsClient, login_email: str, password: str, ip: str | None = "127.0.0.1") -> Any:
    return await call(nc, "customer.query.portal.login", {"email": login_email, "password": password, "ip": ip})


async def test_generated_password_goes_to_notify_and_logs_in(nc: NatsClient, notify: Outbox) -> None:
    card = await create(nc)
    contact = await add_contact(nc, card["id"], contact={"mobile": "+14155550123", "public_notes": "hi"})
    password = await wait_for(lambda: notify.password_for(contact["id"]), message="password on NOTIFY")
    message = next(m for m in notify.messages if str(m.contact_id) == contact["id"])
    assert message.to == contact["email"] and message.subject == f"notify.email.contact_password.{card['id']}"
    assert password not in message.model_dump_json().replace(message.sealed_secret or "", "")
    view = await login(nc, contact["email"].upper(), password)
    assert view["contact"]["id"] == contact["id"] and view["customer"]["id"] == card["id"]
    assert "private_notes" not in view["contact"] and "notes" not in view["customer"]
    assert (await login(nc, contact["email"], password + "x"))["error"]["code"] == "unauthenticated"
    assert (await login(nc, email(), password))["error"]["code"] == "unauthenticated"


async def test_emails_are_unique_across_customers_and_free_after_removal(nc: NatsClient) -> None:
    one, two = await create(nc), await create(nc)
    contact = await add_contact(nc, one["id"], password=TYPED)
    dup = await call(nc, "customer.cmd.contact.add", {
        "customer_id": two["id"], "password": TYPED, "contact": {"name": "B", "email": contact["email"].upper()}})
    assert dup["error"]["code"] == "email_taken"
    racing = await asyncio.gather(*[call(nc, "customer.cmd.contact.add", {
        "customer_id": c["id"], "password": TYPED, "contact": {"name": "R", "email": "race-" + contact["email"]}})
        for c in (one, two, one, two)])
    assert sum("error" not in r for r in racing) == 1
    removed = await call(nc, "customer.cmd.contact.remove", {"customer_id": one["id"], "contact_id": contact["id"]})
    assert all(c["id"] != contact["id"] for c in removed["contacts"])
    assert (await login(nc, contact["email"], TYPED))["error"]["code"] == "unauthenticated"
    again = await add_contact(nc, two["id"], password=TYPED, contact={"email": contact["email"]})
    assert again["email"] == contact["email"]


async def test_typed_passwords_reset_and_notes(nc: NatsClient, notify: Outbox) -> None:
    card = await create(nc)
    short = await call(nc, "customer.cmd.contact.add", {
        "customer_id": card["id"], "password": "short", "contact": {"name": "A", "email": email()}})
    assert short["error"]["code"] == "validation_error" and short["error"]["details"][0]["field"] == "password"
    in_notes = await call(nc, "customer.cmd.contact.add", {
        "customer_id": card["id"], "password": TYPED,
        "contact": {"name": "A", "email": email(), "private_notes": f"pw: {TYPED}."}})
    assert in_notes["error"]["code"] == "password_in_notes"
    contact = await add_contact(nc, card["id"], password=TYPED)
    assert (await login(nc, contact["email"], TYPED))["contact"]["id"] == contact["id"]
    note = await call(nc, "customer.cmd.contact.update", {
        "customer_id": card["id"], "contact_id": contact["id"], "changes": {"public_notes": f"login {TYPED}"}})
    assert note["error"]["code"] == "password_in_notes"
    reset = await call(nc, "customer.cmd.contact.set-password", {
        "customer_id": card["id"], "contact_id": contact["id"]})
    assert "error" not in reset
    new = await wait_for(lambda: notify.password_for(contact["id"], "password_reset"))
    assert (await login(nc, contact["email"], TYPED))["error"]["code"] == "unauthenticated"
    assert (await login(nc, contact["email"], new))["contact"]["id"] == contact["id"]
    second = "another-Typed-Password-7"
    await call(nc, "customer.cmd.contact.set-password", {
        "customer_id": card["id"], "contact_id": contact["id"], "password": second})
    assert (await login(nc, contact["email"], second))["contact"]["id"] == contact["id"]


async def test_portal_rules_refuse_login(nc: NatsClient) -> None:
    card = await create(nc)
    contact = await add_contact(nc, card["id"], password=TYPED, contact={"ip_whitelist": ["10.1.0.0/16"]})
    assert (await login(nc, contact["email"], TYPED, "10.2.0.1"))["error"]["code"] == "forbidden"
    assert "contact" in await login(nc, contact["email"], TYPED, "10.1.2.3")
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"portal_access": False}})
    assert (await login(nc, contact["email"], TYPED, "10.1.2.3"))["error"]["code"] == "forbidden"
    await call(nc, "customer.cmd.update", {"customer_id": card["id"], "changes": {"portal_access": True}})
    await call(nc, "customer.cmd.set-status", {"customer_id": card["id"], "status": "inactive"})
    assert (await login(nc, contact["email"], TYPED, "10.1.2.3"))["error"]["code"] == "forbidden"
    await call(nc, "customer.cmd.delete", {"customer_id": card["id"]})
    refused = await login(nc, contact["email"], TYPED, "10.1.2.3")
    assert refused["error"]["code"] in ("forbidden", "unauthenticated")
    session = await call(nc, "customer.query.portal.session", {
        "customer_id": str(uuid.uuid4()), "contact_id": contact["id"], "ip": "10.1.2.3"})
    assert session["error"]["code"] == "unauthenticated"


async def dial(nc: NatsClient, customer_id: str, cli: str | None = None) -> dict[str, Any]:
    return dict(await call(nc, "customer.query.dial-permission", {"customer_id": customer_id, "cli": cli}))


async def publish_outcome(nc: NatsClient, event_type: str, customer_id: str, contact_id: str, target: str) -> None:
    event = EventEnvelope(
        type=event_type, category="verification", stream_id=customer_id, version=0,
        metadata=Metadata(actor=Actor(kind="portal", id=contact_id, name="Ann")),
        data={"customer_id": customer_id, "contact_id": contact_id, "target": target,
              "channel": event_type.removesuffix("Verified").lower(),
              "verification_id": str(uuid.uuid4())},
    )
    await nc.jetstream().publish(event.subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": str(event.event_id)})


async def test_verification_outcomes_reach_the_card_and_dial_permission(
    nc: NatsClient, service: CustomerService
) -> None:
    verification = {"email_required": True, "mobile_required": True, "approved_clis_only": True}
    card = await create(nc, verification=verification, channels=3, debit_limit="100")
    assert (await dial(nc, card["id"]))["reasons"] == ["email_unverified", "mobile_unverified", "cli_not_approved"]
    contact = await add_contact(nc, card["id"], password=TYPED, contact={"mobile": "+14155550123"})
    await publish_outcome(nc, "EmailVerified", card["id"], contact["id"], contact["email"])
    await publish_outcome(nc, "MobileVerified", card["id"], contact["id"], "+14155550123")
    await publish_outcome(nc, "CliVerified", card["id"], contact["id"], "+14155550199")

    async def allowed() -> bool:
        return bool((await dial(nc, card["id"], "+1 415 555 0199"))["allowed"])

    await wait_for(allowed, message="dial permission after verification")
    got = await call(nc, "customer.query.get", {"customer_id": card["id"]})
    assert got["approved_clis"] == ["+14155550199"]
    assert got["contacts"][0]["email_verified"] and got["contacts"][0]["mobile_verified"]
    answer = await dial(nc, card["id"], "+14155550100")
    assert answer == {"allowed": False, "reasons": ["cli_not_approved"], "penalty_until": None,
                      "limits": {"channels": 3, "cps": "0", "debit_limit": "100"},
                      "credit": {"balance": "0.00", "available": "100.00", "currency": "USD"}}
    rows = await service.pool.fetch(
        "SELECT type, metadata::text AS meta FROM events WHERE stream_id = $1 ORDER BY version", card["id"])
    assert [r["type"] for r in rows][-3:] == ["ContactEmailVerified", "ContactMobileVerified", "CliApproved"]
    assert json.loads(rows[-1]["meta"])["actor"]["kind"] == "portal"
    # an operator sets a flag back by hand; the audit trail says who
    await call(nc, "customer.cmd.contact.update", {
        "customer_id": card["id"], "contact_id": contact["id"], "changes": {"email_verified": False},
        "meta": {"actor": {"kind": "operator", "name": "ops"}}})
    assert (await dial(nc, card["id"], "+14155550199"))["reasons"] == ["email_unverified"]


async def test_dial_permission_follows_other_replicas(nc: NatsClient, service: CustomerService) -> None:
    assert service.dial is not None
    card = await create(nc, debit_limit="100")
    assert (await dial(nc, card["id"]))["allowed"] is True
    await call(nc, "customer.cmd.set-status", {"customer_id": card["id"], "status": "inactive"})
    assert (await dial(nc, card["id"]))["reasons"] == ["inactive"]  # this replica's own commit, at once
    other = CustomerSettings(nats_url=service.settings.nats_url, database_url=service.settings.database_url,
                             secret_key=KEY)
    replica = await start(other)
    try:
        await call(nc, "customer.cmd.set-status", {"customer_id": card["id"], "status": "active"})

        async def both_allow() -> bool:
            views = [s.dial.views.by_customer.get(card["id"]) for s in (service, replica) if s.dial]
            return all(v is not None and not v.before for v in views) and len(views) == 2

        await wait_for(both_allow, message="both replicas see the status change")
    finally:
        await replica.stop()
    assert (await dial(nc, str(uuid.uuid4())))["reasons"] == ["not_found"]
    bad = await nc.request("customer.query.dial-permission", b"{oops", timeout=2)
    assert json.loads(bad.data)["error"]["code"] == "validation_error"


async def test_no_password_in_events_replies_or_rows(nc: NatsClient, service: CustomerService) -> None:
    card = await create(nc)
    contact = await add_contact(nc, card["id"], password=TYPED)
    reply = await call(nc, "customer.cmd.contact.set-password", {
        "customer_id": card["id"], "contact_id": contact["id"], "password": TYPED + "-2"})
    assert TYPED not in json.dumps(reply)
    events = await service.pool.fetchval("SELECT string_agg(data::text || metadata::text, ' ') FROM events")
    board = await service.pool.fetchval("SELECT string_agg(card::text, ' ') FROM customers")
    replies = await service.pool.fetchval("SELECT string_agg(reply::text, ' ') FROM commands")
    outbox = await service.pool.fetchval("SELECT string_agg(encode(payload, 'escape'), ' ') FROM message_outbox")
    hashes = await service.pool.fetch("SELECT hash FROM contact_passwords")
    for text in (events, board, replies, outbox or ""):
        assert TYPED not in (text or "")
        assert not any(h["hash"] in (text or "") for h in hashes)
    assert all(h["hash"].startswith("$argon2id$") for h in hashes)
