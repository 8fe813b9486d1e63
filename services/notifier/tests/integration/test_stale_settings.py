"""An attempt made with settings no longer in force: its retry is due at once, as are the deliveries
of its claim given back untried, and the pause those settings decided does not hold.

The case: the e-mail settings point at a host that takes the connection and never answers; an
admin fixes them while an attempt hangs there until its timeout. The back-off here is the
production-like 30 s (less 20 % jitter); the messages must arrive well before it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier.bootstrap import NotifierService
from notifier_testkit import (
    FakeCustomers,
    FakeTwilio,
    SmtpServer,
    call,
    card,
    contact,
    status,
    use_smtp,
    use_twilio,
)
from strangers import nothing_else_waiting

pytestmark = pytest.mark.servers

TIMEOUT_S = 3.0  # of a provider's answer (PATCHBAY_PROVIDER_TIMEOUT_S)
SOON_S = 12.0  # the hanging attempt's timeout and the sends, well under the back-off (>= 24 s)


@pytest.fixture(scope="module")
def notifier_overrides() -> dict[str, Any]:
    """Production-like back-off (30 s after a first failure), one worker per channel, a short timeout."""
    return {"retry_base_s": 30.0, "retry_max_s": 600.0, "email_workers": 1, "sms_workers": 1,
            "provider_timeout_s": TIMEOUT_S}


class Silent:
    """A TCP port that accepts connections and never says a word (a wedged relay or proxy)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read()  # until the client gives up
        writer.close()

    async def start(self) -> Silent:
        """Listen on a free port of 127.0.0.1."""
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self


@pytest_asyncio.fixture(loop_scope="session")
async def silent() -> AsyncIterator[Silent]:
    port = await Silent().start()
    yield port
    assert port.server is not None
    port.server.close()


async def broadcast(nc: NatsClient, customers: FakeCustomers, channel: str, to: list[str]) -> str:
    """One message to `to`, queued in one statement (one claim takes it all)."""
    cards = customers.add(*[card(f"Stale {a}", [contact("R", a) if channel == "email" else contact("R", mobile=a)])
                            for a in to])
    body: dict[str, Any] = {"channel": channel, "body": "b", "customer_ids": [c["id"] for c in cards]}
    if channel == "email":
        body["subject"] = "s"
    reply = await call(nc, "notifier.cmd.send", body)
    assert reply["recipients"] == len(to), reply
    return str(reply["message_id"])


async def sent_soon(nc: NatsClient, message_id: str, since: float) -> list[dict[str, Any]]:
    """Every recipient of the message sent within SOON_S of `since`."""

    async def all_sent() -> list[dict[str, Any]] | None:
        items = (await status(nc, message_id))["items"]
        return items if all(i["state"] == "sent" for i in items) else None

    items = await wait_for(all_sent, timeout=SOON_S - (time.monotonic() - since), interval=0.1,
                           message="every recipient sent well before the back-off")
    return list(items)


async def test_email_settings_fixed_during_a_hanging_attempt_send_at_once(
    nc: NatsClient, service: NotifierService, customers: FakeCustomers, silent: Silent, smtp: SmtpServer,
) -> None:
    await use_smtp(nc, smtp.port)
    await nothing_else_waiting(service, "email")
    await use_smtp(nc, silent.port)
    to = [f"r{i}-{uuid.uuid4().hex[:8]}@stale.example" for i in range(3)]
    message_id = await broadcast(nc, customers, "email", to)
    await wait_for(lambda: silent.connections >= 1, timeout=10, message="an attempt at the silent port")
    fixed = time.monotonic()
    await use_smtp(nc, smtp.port)  # the admin fixes the settings while that attempt hangs
    items = await sent_soon(nc, message_id, fixed)
    assert all(len(smtp.inbox.to(a)) == 1 for a in to)
    # the one tried at the silent port counts that attempt; the two given back untried do not
    assert sorted(i["attempts"] for i in items) == [1, 1, 2], items
    assert silent.connections == 1  # the new settings are not tried at the old host


class SlowTwilio(FakeTwilio):
    """A Twilio-like API that takes a while and then answers 503 (an overloaded proxy)."""

    async def _create(self, request: web.Request) -> web.Response:
        self.requests.append({"To": (await request.post()).get("To", "")})
        await asyncio.sleep(TIMEOUT_S / 2)
        return web.json_response({"code": 20503, "message": "busy", "status": 503}, status=503)


async def test_sms_settings_changed_during_a_failing_attempt_send_at_once(
    nc: NatsClient, service: NotifierService, customers: FakeCustomers, twilio: FakeTwilio,
) -> None:
    await use_twilio(nc, twilio)
    await nothing_else_waiting(service, "sms")
    slow = await SlowTwilio().start()
    try:
        reply = await call(nc, "notifier.cmd.settings.sms", {
            "account_sid": "AC" + "2" * 32, "auth_token": "tok-" + uuid.uuid4().hex,
            "from_number": "+15550001111", "api_base_url": slow.base_url})
        assert "error" not in reply, reply
        to = [f"+1555000{uuid.uuid4().int % 10_000:04d}" for _ in range(3)]
        message_id = await broadcast(nc, customers, "sms", to)
        await wait_for(lambda: len(slow.requests) >= 1, timeout=10, message="an attempt at the slow API")
        fixed = time.monotonic()
        reply = await call(nc, "notifier.cmd.settings.sms", {
            "account_sid": "AC" + "1" * 32, "auth_token": "tok-" + uuid.uuid4().hex,
            "from_number": "+15550001111", "api_base_url": twilio.base_url})
        assert "error" not in reply, reply
        items = await sent_soon(nc, message_id, fixed)
        assert all(len(twilio.to(n)) == 1 for n in to)
        assert sorted(i["attempts"] for i in items) == [1, 1, 2], items
        assert len(slow.requests) == 1  # the rest of that claim was not tried with the old settings
    finally:
        await slow.stop()
