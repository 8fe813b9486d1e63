"""Other tests' leftovers on purpose: system messages another module left in the worker's NOTIFY queue.

Every notifier on a worker's NATS reads the one durable `notifier` of the NOTIFY work queue. What
an earlier module left there becomes a delivery of the next module's notifier: an alert or a
receipt is unsealed (any notifier can send it), due the moment a test configures the channel, so
it reaches that test's SMTP server or Twilio double (a sealed password or code fails to open
with another module's key and is dead-lettered instead). The fixtures leave a few strangers on
purpose, so a test that counts every message of a server fails every time, not once in a
thousand runs (docs/testing.md, "Shared state").
"""

from __future__ import annotations

import json
import uuid

from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from notifier.bootstrap import NotifierService
from notifier_testkit import SmtpServer, call

from shared import bus

DOMAIN = "elsewhere.example"  # the strangers' e-mail addresses
PREFIX = "+1555999"  # and their mobile numbers


async def leave_strangers(js: JetStreamContext, *, emails: int = 2, texts: int = 1) -> dict[str, int]:
    """Publish unsealed alert messages to NOTIFY as an alerts test leaves them; recipient -> sequence."""
    tag = uuid.uuid4().hex[:8]
    to = [f"stranger{i}-{tag}@{DOMAIN}" for i in range(emails)]
    to += [f"{PREFIX}{uuid.uuid4().int % 10_000:04d}" for _ in range(texts)]
    variables = {"customer_name": "Stranger", "contact_name": "Sam", "alert_name": f"left-{tag}",
                 "level": "warning", "area": "asr", "value": "10", "direction": "below",
                 "threshold": "30", "penalty_until": ""}
    left = {}
    for address in to:
        channel = "sms" if address.startswith("+") else "email"
        body = {"notification_id": f"stranger:{tag}:{address}", "channel": channel,
                "template": "alert_customer", "to": address, "variables": variables}
        ack = await js.publish(f"notify.{channel}.alert_customer.none", json.dumps(body).encode(),
                               headers={"Nats-Msg-Id": body["notification_id"]})
        left[address] = ack.seq
    return left


async def strangers_queued(nats_url: str, *, emails: int = 2, texts: int = 1) -> list[str]:
    """`leave_strangers`, then wait until the notifier has queued them (acknowledged: the work queue
    dropped them); only them, as another module's message may wait out its ack wait (30 s) meanwhile."""
    nc = await bus.connect(nats_url, "provisioner")
    try:
        js = nc.jetstream()
        left = await leave_strangers(js, emails=emails, texts=texts)

        async def queued() -> bool:
            for seq in left.values():
                try:
                    await js.get_msg("NOTIFY", seq)
                    return False
                except NotFoundError:
                    continue
            return True

        await wait_for(queued, timeout=15, interval=0.05, message="the notifier to queue the strangers' messages")
    finally:
        await nc.drain()
    return list(left)


async def settle_leftovers(nc: NatsClient, service: NotifierService) -> None:
    """Send every e-mail other tests left queued to a sink of its own, then stop the sink.

    For a test that counts what is not per recipient (logins, a channel's pause, the order of
    attempts): it starts with no other delivery of the channel waiting.
    """
    sink = SmtpServer(free_port()).start()
    try:
        reply = await call(nc, "notifier.cmd.settings.email", {  # no login: a new destination needs it said
            "from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
            "security": "none", "smtp_username": None, "smtp_password": ""})
        assert "error" not in reply, reply

        await nothing_else_waiting(service, "email")
    finally:
        sink.stop()


async def nothing_else_waiting(service: NotifierService, channel: str) -> None:
    """Wait until no delivery of the channel is queued or sending (each made due at once meanwhile).

    One tried with the old settings while they changed may come back with a back-off to wait out
    (up to 30 s in test_settings_change): due again, as the settings change makes the others.
    """

    async def none_waiting() -> bool:
        await service.pool.execute("UPDATE deliveries SET next_attempt_at = now() WHERE channel = $1"
                                   " AND state = 'queued' AND next_attempt_at > now()", channel)
        return not await service.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE channel = $1 AND state IN ('queued', 'sending')", channel)

    await wait_for(none_waiting, timeout=15, interval=0.2, message=f"other tests' {channel} deliveries sent")
