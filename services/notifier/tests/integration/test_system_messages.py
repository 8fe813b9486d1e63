"""System messages from the NOTIFY work queue; poison messages and exhausted deliveries dead-lettered."""

from __future__ import annotations

import json
import uuid

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from notifier_testkit import (
    FakeCustomers,
    FakeTwilio,
    SmtpServer,
    call,
    card,
    contact,
    settled,
    use_smtp,
    use_twilio,
)
from shared.contracts.notify import SystemMessage
from shared.secrets import Sealer

pytestmark = pytest.mark.servers


async def publish(js: JetStreamContext, message: SystemMessage, msg_id: str | None = None) -> None:
    await js.publish(
        message.subject,
        message.model_dump_json().encode(),
        headers={"Nats-Msg-Id": msg_id or message.notification_id},
    )


async def dead_letter(js: JetStreamContext, subject: str, needle: str) -> bytes | None:
    """The payload on a dead-letter subject that contains `needle`, if any."""
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:  # read to the end (nats-py's timeout subclasses the builtin)
                return None
            if needle.encode() in msg.data:
                return bytes(msg.data)
    finally:
        await sub.unsubscribe()


async def test_a_verification_code_by_sms(nc: NatsClient, twilio: FakeTwilio, secret_key: str) -> None:
    await use_twilio(nc, twilio)
    number = "+1555" + str(uuid.uuid4().int)[:7]
    message = SystemMessage(
        notification_id=str(uuid.uuid4()),
        channel="sms",
        template="mobile_code",
        to=number,
        sealed_secret=Sealer(secret_key).seal("482913"),
    )
    await publish(nc.jetstream(), message)
    await wait_for(lambda: twilio.to(number), timeout=15, message="the code SMS")
    assert twilio.to(number)[0]["Body"] == "Patchbay verification code: 482913 (valid for 10 minutes)"


async def test_a_poison_message_is_dead_lettered_and_the_queue_goes_on(
    nc: NatsClient, smtp: SmtpServer, secret_key: str
) -> None:
    await use_smtp(nc, smtp.port)
    js = nc.jetstream()
    poison_id = str(uuid.uuid4())
    await js.publish(
        "notify.email.contact_password", b'{"not": "a system message"}', headers={"Nats-Msg-Id": poison_id}
    )
    bad_seal = SystemMessage(
        notification_id=str(uuid.uuid4()),
        channel="email",
        template="contact_password",
        to="x@y.example",
        sealed_secret="not-sealed-with-our-key",
    )
    await publish(js, bad_seal)
    good_to = f"after-{uuid.uuid4().hex[:8]}@sys.example"
    good = SystemMessage(
        notification_id=str(uuid.uuid4()),
        channel="email",
        template="password_reset",
        to=good_to,
        variables={"contact_name": "Pat"},
        sealed_secret=Sealer(secret_key).seal("N3w-pass"),
    )
    await publish(js, good)
    await wait_for(lambda: smtp.inbox.to(good_to), timeout=15, message="the message after the poison")
    assert "N3w-pass" in smtp.inbox.to(good_to)[0].body

    async def parked() -> bytes | None:
        return await dead_letter(js, "dlq.notifier", bad_seal.notification_id)  # every partition's

    assert await wait_for(parked, timeout=10, message="the unrenderable message on the dead-letter subject")


async def test_out_of_attempts_is_failed_and_dead_lettered(
    nc: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    tag = uuid.uuid4().hex[:8]
    busy = f"busy-{tag}@x.example"
    smtp.inbox.refuse[busy] = "451 4.3.0 try again later"
    (c,) = customers.add(card(f"Busy {tag}", [contact("Ray", busy)]))
    reply = await call(
        nc, "notifier.cmd.send", {"channel": "email", "subject": "s", "body": "b", "customer_ids": [c["id"]]}
    )
    final = await settled(nc, reply["message_id"], timeout=40)
    (item,) = final["items"]
    assert item["state"] == "failed" and item["dead_lettered"] and item["attempts"] == 6
    assert "451" in item["last_error"]
    js = nc.jetstream()

    async def parked() -> bytes | None:
        return await dead_letter(js, "dlq.notifier.delivery", item["delivery_id"])

    letter = json.loads(await wait_for(parked, timeout=10, message="the dead letter"))
    assert letter["recipient"] == busy and letter["attempts"] == 6
