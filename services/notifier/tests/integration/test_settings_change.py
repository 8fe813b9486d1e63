"""A settings change ends the back-off: deliveries waiting on a refusing or unreachable SMTP server
are tried again at once with the new settings, not after their pause (here >= 24 s, in production
up to 600 s)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier.bootstrap import NotifierService
from notifier_testkit import FakeCustomers, SmtpServer, call, card, contact, settled, status
from strangers import settle_leftovers

pytestmark = [
    pytest.mark.servers,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

USERS = {"noc": "smtp-Secret-77"}
SOON_S = 10.0  # well under the shortest back-off below (30 s less 20 % jitter)


@pytest.fixture(scope="module")
def notifier_overrides() -> dict[str, Any]:
    """Production-like back-off: 30 s after a first failure, doubling up to 600 s; one e-mail worker.

    The tests count one connection's logins and one recipient tried: two workers woken by the same
    broadcast may split its claim (SKIP LOCKED) and each try one (4 refused logins, seen 1 in 7).
    """
    return {"retry_base_s": 30.0, "retry_max_s": 600.0, "email_workers": 1}


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def no_other_email_waiting(nc: NatsClient, service: NotifierService) -> None:
    """These tests count logins and attempts of the whole channel: e-mails other tests left queued
    (the worker's NOTIFY, `strangers`) would be tried first and pause the channel before this
    test's own, so they are sent away first."""
    await settle_leftovers(nc, service)


@pytest.fixture
def auth_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), users=USERS).start()
    yield server
    server.stop()


async def email_settings(nc: NatsClient, port: int, password: str, username: str | None = "noc") -> None:
    reply = await call(nc, "notifier.cmd.settings.email", {
        "from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": port,
        "security": "none", "smtp_username": username, "smtp_password": password})
    assert "error" not in reply, reply


async def broadcast(nc: NatsClient, customers: FakeCustomers, tag: str, n: int) -> tuple[str, list[str]]:
    addresses = [f"r{i}-{tag}@wake.example" for i in range(n)]
    cards = customers.add(*[card(f"Wake {tag} {i}", [contact(f"R{i}", a)]) for i, a in enumerate(addresses)])
    reply = await call(nc, "notifier.cmd.send", {
        "channel": "email", "subject": "s", "body": "b", "customer_ids": [c["id"] for c in cards]})
    assert reply["recipients"] == n, reply
    return reply["message_id"], addresses


async def waiting(nc: NatsClient, message_id: str, error: str, *, tried: int) -> None:
    """`tried` recipients failed once with `error`, the rest were given back untried: all wait."""

    async def backing_off() -> bool:
        items = (await status(nc, message_id))["items"]
        failed = [i for i in items if i["state"] == "retrying" and error in (i["last_error"] or "")]
        return len(failed) == tried and all(i["state"] in ("retrying", "queued") for i in items)

    await wait_for(backing_off, timeout=15, message=f"{tried} recipients retrying after {error!r}")


async def test_fixing_the_smtp_password_sends_the_waiting_deliveries_at_once(
    nc: NatsClient, customers: FakeCustomers, auth_smtp: SmtpServer
) -> None:
    await email_settings(nc, auth_smtp.port, "wrong-password")
    message_id, addresses = await broadcast(nc, customers, uuid.uuid4().hex[:8], 3)
    # a refused login pauses the channel as an outage does: one connection's login (aiosmtplib
    # tries both mechanisms aiosmtpd offers, PLAIN and LOGIN), not one per recipient (6)
    await waiting(nc, message_id, "535", tried=1)
    assert auth_smtp.refused_logins == 2
    fixed = time.monotonic()
    await email_settings(nc, auth_smtp.port, USERS["noc"])  # the admin fixes the password
    final = await settled(nc, message_id, timeout=SOON_S)
    assert time.monotonic() - fixed < SOON_S
    assert final["counts"]["sent"] == 3, final["items"]
    assert sorted(i["attempts"] for i in final["items"]) == [1, 1, 2]  # the two given back untried
    assert all(len(auth_smtp.inbox.to(a)) == 1 for a in addresses)


async def test_a_new_smtp_server_ends_the_workers_back_off(nc: NatsClient, customers: FakeCustomers) -> None:
    await email_settings(nc, free_port(), "", None)  # nothing listens there: the e-mail workers pause
    message_id, addresses = await broadcast(nc, customers, uuid.uuid4().hex[:8], 3)
    # the first one found the server down; the others, given back untried, wait as long
    await waiting(nc, message_id, "SMTP connection", tried=1)
    server = SmtpServer(free_port()).start()
    try:
        await email_settings(nc, server.port, "", None)
        final = await settled(nc, message_id, timeout=SOON_S)
        assert final["counts"]["sent"] == 3, final["items"]
        assert all(len(server.inbox.to(a)) == 1 for a in addresses)
    finally:
        server.stop()
