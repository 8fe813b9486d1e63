"""Messages and notifier settings through the gateway, to the real notifier, SMTP server and Twilio double."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from shared.secrets import Sealer

from shared import bus

sys.path.insert(0, str(Path(__file__).parents[3] / "notifier" / "tests"))
from notifier_testkit import FakeCustomers, FakeTwilio, SmtpServer, card, contact

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notifier_service(gateway: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """The notifier in-process on the gateway's NATS, with its own database."""
    from notifier.bootstrap import NotifierSettings, start

    settings = NotifierSettings(
        nats_url=gateway.settings.nats_url,
        database_url=gateway.settings.database_url,
        secret_key=Sealer.new_key(),
        retry_base_s=0.2,
        idle_poll_s=0.1,
        journal_dir=Path(tmp_path_factory.mktemp("journal")),
        allow_insecure_providers=True,  # the Twilio double speaks plain http
    )
    service = await start(settings)
    yield service
    await service.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customers(gateway: Any, notifier_service: Any) -> AsyncIterator[FakeCustomers]:
    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    fake = await FakeCustomers().start(nc)
    yield fake
    await fake.stop()
    await nc.drain()


@pytest.fixture(scope="module")
def smtp() -> Any:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(gateway: Any, notifier_service: Any, smtp: SmtpServer) -> Any:
    """The admin client, with e-mail settings pointing at the test SMTP server."""

    async def answers() -> bool:
        return (await gateway.client.get("/v1/settings/email")).status_code == 200

    await wait_for(answers, timeout=10, message="the notifier behind the gateway")
    reply = await gateway.client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "from_name": "NOC",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
            "smtp_username": "noc",
            "smtp_password": "pw-hidden-1",
        },
    )
    assert reply.status_code == 200, reply.text
    return gateway.client


async def test_email_settings_hide_the_password_and_keep_it_when_omitted(client: Any) -> None:
    got = (await client.get("/v1/settings/email")).json()
    assert got["smtp_password"] is None and got["smtp_password_set"] is True
    assert "pw-hidden-1" not in (await client.get("/v1/settings/email")).text
    again = await client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": got["smtp_port"],
            "security": "none",
            "smtp_username": "noc",
        },
        headers={"If-Match": f'"{got["version"]}"'},
    )
    assert again.status_code == 200, again.text
    assert again.json()["smtp_password_set"] is True and again.json()["version"] == got["version"] + 1
    stale = await client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "security": "none",
        },
        headers={"If-Match": f'"{got["version"]}"'},
    )
    assert stale.status_code == 412
    # aiosmtpd offers no AUTH: put the settings back without a username
    await client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": got["smtp_port"],
            "security": "none",
            "smtp_password": "",
        },
    )


async def test_operator_sends_viewer_reads_the_delivery(
    gateway: Any, client: Any, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
            "smtp_password": "",
        },
    )
    tag = uuid.uuid4().hex[:8]
    (c,) = customers.add(card(f"Gw {tag}", [contact("Ora", f"ora-{tag}@gw.example")]))
    operator = gateway.as_token(await gateway.make_token("operator"))
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    body = {
        "channel": "email",
        "subject": "For {{customer.name}}",
        "body": "Hi {{contact.name}}",
        "customer_ids": [c["id"]],
    }
    assert (await client.post("/v1/messages", json=body, headers=viewer)).status_code == 403
    sent = await client.post("/v1/messages", json=body, headers=operator)
    assert sent.status_code == 202, sent.text
    assert (
        sent.json()["recipients"] == 1
        and sent.headers["Location"] == f"/v1/messages/{sent.json()['message_id']}"
    )

    async def delivered() -> dict[str, Any] | None:
        status = (await client.get(sent.headers["Location"], headers=viewer)).json()
        return status if status["counts"]["sent"] == 1 else None

    status = await wait_for(delivered, timeout=15, message="the message to be sent")
    assert status["items"][0]["to"] == f"ora-{tag}@gw.example" and status["items"][0]["attempts"] == 1
    assert smtp.inbox.to(f"ora-{tag}@gw.example")[0].subject == f"For Gw {tag}"


async def test_settings_are_admin_only(gateway: Any, client: Any) -> None:
    operator = gateway.as_token(await gateway.make_token("operator"))
    viewer = gateway.as_token(await gateway.make_token("viewer"))
    for headers in (operator, viewer):
        assert (await client.get("/v1/settings/email", headers=headers)).status_code == 403
        assert (await client.get("/v1/settings/sms", headers=headers)).status_code == 403
        assert (
            await client.post("/v1/settings/email/test", json={"to": "a@b.example"}, headers=headers)
        ).status_code == 403
    assert (await client.get("/v1/settings/email", headers={"Authorization": ""})).status_code == 401


async def test_bad_input_is_422_and_unknown_message_404(client: Any) -> None:
    both = await client.post(
        "/v1/messages",
        json={
            "channel": "email",
            "subject": "s",
            "body": "b",
            "customer_ids": [str(uuid.uuid4())],
            "filter": {},
        },
    )
    assert both.status_code == 422 and both.json()["error"]["code"] == "validation_error"
    assert (await client.post("/v1/messages", json={"channel": "fax", "body": "b"})).status_code == 422
    missing = await client.get(f"/v1/messages/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_test_email_and_test_sms(client: Any, smtp: SmtpServer) -> None:
    await client.put(
        "/v1/settings/email",
        json={
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
            "smtp_password": "",
        },
    )
    to = f"test-{uuid.uuid4().hex[:8]}@gw.example"
    reply = await client.post("/v1/settings/email/test", json={"to": to})
    assert reply.status_code == 200 and reply.json()["delivered"] is True, reply.text
    assert smtp.inbox.to(to)[0].subject == "Patchbay test e-mail"
    twilio = await FakeTwilio(bad_numbers={"+15550000000"}).start()
    try:
        put = await client.put(
            "/v1/settings/sms",
            json={
                "account_sid": "AC" + "2" * 32,
                "auth_token": "tok-secret-9",
                "from_number": "+15551112222",
                "api_base_url": twilio.base_url,
            },
        )
        assert put.status_code == 200 and put.json()["auth_token"] is None and put.json()["auth_token_set"]
        ok = (await client.post("/v1/settings/sms/test", json={"to": "+15553334444"})).json()
        assert ok["delivered"] is True and ok["provider_id"].startswith("SM")
        bad = (await client.post("/v1/settings/sms/test", json={"to": "+15550000000"})).json()
        assert bad["delivered"] is False and bad["permanent"] is True and "21211" in bad["reason"]
        assert twilio.to("+15553334444")[0]["From"] == "+15551112222"
    finally:
        await twilio.stop()
