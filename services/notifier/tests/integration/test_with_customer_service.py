"""With the real customer service: its generated passwords arrive by e-mail, its cards feed broadcasts."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from customer.bootstrap import CustomerService, CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier_testkit import SmtpServer, call, settled, use_smtp

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customer_service(
    nats_url: str, make_database: Any, secret_key: str
) -> AsyncIterator[CustomerService]:
    """The customer service in-process, sealing generated passwords with the notifier's key."""
    settings = CustomerSettings(nats_url=nats_url, database_url=await make_database(), secret_key=secret_key)
    svc = await start_customer(settings)
    yield svc
    await svc.stop()


async def test_a_generated_password_arrives_and_logs_in_then_a_broadcast_reaches_the_contact(
    nc: NatsClient, customer_service: CustomerService, smtp: SmtpServer
) -> None:
    await use_smtp(nc, smtp.port)
    name = f"Real {uuid.uuid4().hex[:8]}"
    card = await call(nc, "customer.cmd.create", {"customer": {"name": name}})
    assert "error" not in card, card
    address = f"real-{uuid.uuid4().hex[:8]}@contact.example"
    added = await call(
        nc,
        "customer.cmd.contact.add",
        {"customer_id": card["id"], "contact": {"name": "Rita", "email": address}},
    )
    assert "error" not in added, added

    mail = (await wait_for(lambda: smtp.inbox.to(address), timeout=20, message="the password e-mail"))[0]
    assert mail.subject == "Your Patchbay portal password"
    assert "Hello Rita" in mail.body and name in mail.body and address in mail.body
    password = re.search(r"and this password:\s+(\S+)", mail.body)
    assert password, mail.body
    login = await call(nc, "customer.query.portal.login", {"email": address, "password": password.group(1)})
    assert "error" not in login, login

    sent = await call(
        nc,
        "notifier.cmd.send",
        {
            "channel": "email",
            "subject": "News for {{customer.name}}",
            "body": "Hi {{contact.name}}",
            "customer_ids": [card["id"]],
        },
    )
    assert sent["recipients"] == 1 and sent["skipped"] == [], sent
    await settled(nc, sent["message_id"])
    news = [m for m in smtp.inbox.to(address) if m.subject == f"News for {name}"]
    assert len(news) == 1 and news[0].body.strip() == "Hi Rita"
