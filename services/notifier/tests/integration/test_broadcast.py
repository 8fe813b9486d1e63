"""Broadcasts end to end in one process: real NATS, PostgreSQL, SMTP server and a Twilio-like API."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
from devtools.embedded import free_port
from devtools.testing.waiting import holds_for, wait_for
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError
from notifier.bootstrap import NotifierService
from notifier_testkit import (
    FakeCustomers,
    FakeTwilio,
    SmtpServer,
    call,
    card,
    contact,
    settled,
    status,
    use_smtp,
    use_twilio,
)
from shared.personal_data import DataKey, reveal

pytestmark = pytest.mark.servers


def email_to(
    customer_ids: list[str],
    subject: str = "Hello {{customer.name}}",
    body: str = "Dear {{contact.name}},\nmaintenance tonight.\n",
    **extra: Any,
) -> dict[str, Any]:
    return {"channel": "email", "subject": subject, "body": body, "customer_ids": customer_ids, **extra}


async def test_email_broadcast_reaches_every_contact_once_with_placeholders(
    nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    acme, beta, empty = customers.add(
        card(
            f"Acme {tag}",
            [contact("Ann", f"ann-{tag}@acme.example"), contact("Bob", f"bob-{tag}@acme.example")],
        ),
        card(f"Beta {tag}", [contact("Cyd", f"cyd-{tag}@beta.example", "+15551230001")]),
        card(f"Empty {tag}", [contact("Dee", None, "+15551230002")]),
    )
    unknown = str(uuid.uuid4())
    reply = await call(nc, "notifier.cmd.send", email_to([acme["id"], beta["id"], empty["id"], unknown]))
    assert reply["recipients"] == 3, reply
    assert {(s["customer_id"], s["reason"]) for s in reply["skipped"]} == {
        (empty["id"], "no contact with an e-mail address"),
        (unknown, "not found"),
    }
    final = await settled(nc, reply["message_id"])
    assert final["counts"]["sent"] == 3 and all(i["attempts"] == 1 for i in final["items"])
    # only this test's addresses: system e-mails left queued by earlier tests may reach the sink too
    ours = (f"ann-{tag}@acme.example", f"bob-{tag}@acme.example", f"cyd-{tag}@beta.example")

    def received() -> list[Any]:
        return [m for address in ours for m in smtp.inbox.to(address)]

    await wait_for(lambda: len(received()) == 3, timeout=5)
    ann = smtp.inbox.to(f"ann-{tag}@acme.example")
    assert len(ann) == 1 and ann[0].subject == f"Hello Acme {tag}"
    assert ann[0].body.startswith("Dear Ann,") and "Carrier NOC" in ann[0].sender
    assert len({m.message_id for m in received()}) == 3


async def test_outcomes_are_events_without_bodies(
    nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    (c,) = customers.add(card(f"Evt {tag}", [contact("Eve", f"eve-{tag}@evt.example")]))
    reply = await call(nc, "notifier.cmd.send", email_to([c["id"]], body=f"secret-body-{tag}"))
    final = await settled(nc, reply["message_id"])
    delivery_id = final["items"][0]["delivery_id"]
    js = nc.jetstream()

    async def sent_event() -> Any:
        try:
            return await js.get_last_msg(
                "NOTIFICATION_EVENTS", f"events.notification.{delivery_id}.DeliverySent.*"  # .<partition>
            )
        except NotFoundError:  # not yet published
            return None

    raw = await wait_for(sent_event, timeout=10, message="the DeliverySent event")
    event = json.loads(raw.data)
    assert event["data"]["customer_id"] == c["id"] and event["data"]["to"].startswith("enc:v1:")
    assert f"secret-body-{tag}" not in raw.data.decode() and f"eve-{tag}" not in raw.data.decode()
    keys = {k["key_id"]: DataKey.of(k["key_id"], k["subject"], base64.b64decode(k["key"]))
            for k in customers.keys.values()}
    assert reveal(event["data"]["to"], keys) == f"eve-{tag}@evt.example"  # the contact's key opens it
    queued = await js.get_last_msg(
        "NOTIFICATION_EVENTS", f"events.notification.{reply['message_id']}.MessageQueued.*"
    )
    assert json.loads(queued.data)["data"]["recipients"] == 1


async def test_unknown_placeholder_is_a_validation_error(nc: NatsClient, smtp: SmtpServer) -> None:
    await use_smtp(nc, smtp.port)
    reply = await call(
        nc, "notifier.cmd.send", email_to([str(uuid.uuid4())], body="{{customer.__class__}} {{x}}")
    )
    assert reply["error"]["code"] == "validation_error"
    assert "unknown placeholder" in reply["error"]["details"][0]["message"]


async def test_a_retried_command_queues_nothing_new(
    nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    (c,) = customers.add(card(f"Idem {tag}", [contact("Ida", f"ida-{tag}@idem.example")]))
    body = email_to([c["id"]], meta={"command_id": f"cmd-{tag}"})
    first, second = await asyncio.gather(
        call(nc, "notifier.cmd.send", body), call(nc, "notifier.cmd.send", body)
    )
    assert first == second
    # who asks and the correlation are not the request: still the first reply
    again = {**body, "meta": {"command_id": f"cmd-{tag}", "correlation_id": f"other-{tag}"}}
    assert await call(nc, "notifier.cmd.send", again) == first
    # the same key with another message is refused, and queues nothing
    other = email_to([c["id"]], body="Something else", meta={"command_id": f"cmd-{tag}"})
    refused = await call(nc, "notifier.cmd.send", other)
    assert refused["error"]["code"] == "conflict", refused
    assert refused["error"]["details"][0]["type"] == "idempotency_key_reused"
    await settled(nc, first["message_id"])
    await holds_for(lambda: smtp.inbox.per_recipient()[f"ida-{tag}@idem.example"] == 1, 0.5,
                    "a second send of the same command would e-mail Ida again")


async def test_a_refused_address_fails_at_once_and_the_rest_arrive(
    nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    gone = f"gone-{tag}@x.example"
    smtp.inbox.refuse[gone] = "550 5.1.1 no such user"
    (c,) = customers.add(card(f"Ref {tag}", [contact("Gus", gone), contact("Hal", f"hal-{tag}@x.example")]))
    reply = await call(nc, "notifier.cmd.send", email_to([c["id"]]))
    final = await settled(nc, reply["message_id"])
    by_to = {i["to"]: i for i in final["items"]}
    assert by_to[gone]["state"] == "failed" and by_to[gone]["attempts"] == 1
    assert "550" in by_to[gone]["last_error"] and not by_to[gone]["dead_lettered"]
    assert by_to[f"hal-{tag}@x.example"]["state"] == "sent"


async def test_smtp_down_then_up_delivers_after_retries(nc: NatsClient, customers: FakeCustomers) -> None:
    port = free_port()
    await use_smtp(nc, port)  # nothing listens there yet
    tag = uuid.uuid4().hex[:8]
    cards = customers.add(
        *[card(f"Down {tag} {i}", [contact(f"C{i}", f"c{i}-{tag}@down.example")]) for i in range(5)]
    )
    reply = await call(nc, "notifier.cmd.send", email_to([c["id"] for c in cards]))

    async def retrying() -> bool:
        return any(i["attempts"] >= 2 for i in (await status(nc, reply["message_id"]))["items"])

    await wait_for(retrying, timeout=10, message="a retry while the SMTP server is down")
    server = SmtpServer(port).start()
    try:
        final = await settled(nc, reply["message_id"], timeout=30)
        assert final["counts"]["sent"] == 5, final["counts"]
        # The settings change also makes other tests' waiting deliveries due (notifier migration
        # 0004), and this worker's notifier may hand them to this server: count this test's only.
        ours = {rcpt: n for rcpt, n in server.inbox.per_recipient().items() if rcpt.endswith(f"-{tag}@down.example")}
        assert sorted(ours) == sorted(f"c{i}-{tag}@down.example" for i in range(5)), ours
        assert all(n == 1 for n in ours.values()), ours
    finally:
        server.stop()


async def test_sms_broadcast_and_a_bad_number_fails_without_a_retry_storm(
    nc: NatsClient, customers: FakeCustomers, twilio: FakeTwilio
) -> None:
    await use_twilio(nc, twilio)
    tag = uuid.uuid4().hex[:8]
    # this test's own numbers: other tests' queued texts (the worker's NOTIFY) may reach the double
    kim, bad = (f"+1555{uuid.uuid4().int % 10_000_000:07d}" for _ in range(2))
    twilio.bad_numbers.add(bad)
    (c,) = customers.add(
        card(
            f"Sms {tag}",
            [
                contact("Kim", None, kim),
                contact("Lou", None, bad),
                contact("Max", f"max-{tag}@x.example", None),
            ],
        )
    )
    reply = await call(
        nc, "notifier.cmd.send", {"channel": "sms", "body": "Hi {{contact.name}}", "customer_ids": [c["id"]]}
    )
    assert reply["recipients"] == 2
    final = await settled(nc, reply["message_id"])
    by_to = {i["to"]: i for i in final["items"]}
    assert by_to[kim]["state"] == "sent"
    assert by_to[bad]["state"] == "failed" and by_to[bad]["attempts"] == 1
    assert "21211" in by_to[bad]["last_error"]
    await holds_for(lambda: len(twilio.to(bad)) == 1 and len(twilio.to(kim)) == 1, 1.0,
                    "a retry storm on the refused number would show up here")
    assert twilio.to(kim)[0]["Body"] == "Hi Kim"
    expected = base64.b64encode(b"AC" + b"1" * 32 + b":").decode()
    assert all(a.startswith("Basic " + expected[:40]) for a in twilio.auth_seen)


async def test_broadcast_by_board_filter(nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    customers.add(
        card(f"F1 {tag}", [contact("A", f"a-{tag}@f.example")], tags=[tag]),
        card(f"F2 {tag}", [contact("B", f"b-{tag}@f.example")], tags=[tag]),
        card(f"F3 {tag}", [contact("C", f"c-{tag}@f.example")]),
    )
    reply = await call(
        nc, "notifier.cmd.send", {"channel": "email", "subject": "s", "body": "b", "filter": {"tag": [tag]}}
    )
    assert reply["recipients"] == 2
    await settled(nc, reply["message_id"])
    ours = {rcpt for rcpt in smtp.inbox.per_recipient() if rcpt.endswith(f"-{tag}@f.example")}
    assert ours == {f"a-{tag}@f.example", f"b-{tag}@f.example"}


async def test_a_connection_the_server_dropped_is_replaced_without_a_lost_attempt(
    nc: NatsClient, customers: FakeCustomers
) -> None:
    port = free_port()
    server = SmtpServer(port).start()
    await use_smtp(nc, port)
    tag = uuid.uuid4().hex[:8]
    (first,) = customers.add(card(f"Keep {tag}", [contact("A", f"a-{tag}@keep.example")]))
    reply = await call(nc, "notifier.cmd.send", email_to([first["id"]]))
    await settled(nc, reply["message_id"])
    server.stop()  # the workers' kept connections die with it
    server = SmtpServer(port, server.inbox).start()
    try:
        (second,) = customers.add(card(f"Keep2 {tag}", [contact("B", f"b-{tag}@keep.example")]))
        reply = await call(nc, "notifier.cmd.send", email_to([second["id"]]))
        final = await settled(nc, reply["message_id"], timeout=5)
        assert final["items"][0]["state"] == "sent" and final["items"][0]["attempts"] == 1
        assert server.inbox.per_recipient()[f"b-{tag}@keep.example"] == 1
    finally:
        server.stop()


async def test_a_claim_this_process_lost_track_of_is_sent_once(
    nc: NatsClient, service: NotifierService, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    message_id, delivery_id, to = uuid.uuid4(), uuid.uuid4(), f"orphan-{uuid.uuid4().hex[:8]}@x.example"
    # as if a claim committed but its answer never reached this process
    await service.pool.execute(
        "INSERT INTO messages (message_id, kind, channel, subject, body, metadata, recipients)"
        " VALUES ($1, 'broadcast', 'email', 's', 'b', '{}', 1)",
        message_id,
    )
    await service.pool.execute(
        "INSERT INTO deliveries (delivery_id, message_id, idempotency_key, channel, recipient, subject, body,"
        " state, attempts, claimed_by, claimed_at) VALUES ($1, $2, $3, 'email', $4, 's', 'orphan', 'sending', 1,"
        " $5, now() - interval '5 minutes')",
        delivery_id,
        message_id,
        f"{message_id}:{to}",
        to,
        service.instance,
    )
    assert await service.recovery.once() >= 1
    final = await settled(nc, str(message_id))
    assert final["items"][0]["state"] == "sent" and final["items"][0]["attempts"] == 1
    await holds_for(lambda: smtp.inbox.per_recipient()[to] == 1, 0.5,
                    "recovery must not send the orphaned delivery twice")
