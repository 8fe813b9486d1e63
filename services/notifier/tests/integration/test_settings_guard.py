"""Provider settings cannot send a stored secret elsewhere, insist on https, and test-send errors
name what failed without network details (issue 14)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from devtools.embedded import free_port
from nats.aio.client import Client as NatsClient
from notifier.application.channel_settings import ChannelSettings
from notifier.application.settings_guard import check_api_base_url
from notifier_testkit import FakeTwilio, SmtpServer, call
from shared.contracts.notifier import SmsSettingsIn
from shared.errors import ServiceError
from shared.eventstore import EventStore
from shared.secrets import Sealer

pytestmark = pytest.mark.servers
SID = "AC" + "2" * 32


def email(port: int, **extra: Any) -> dict[str, Any]:
    return {"from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": port,
            "security": "none", **extra}


def sms(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"account_sid": SID, "from_number": "+15550001111", "api_base_url": base_url, **extra}


def refused_for(reply: dict[str, Any], field: str) -> None:
    assert reply.get("error", {}).get("code") == "validation_error", reply
    assert reply["error"]["details"][0]["field"] == field, reply


async def test_moving_the_smtp_server_needs_the_password_again(nc: NatsClient, smtp: SmtpServer) -> None:
    subject = "notifier.cmd.settings.email"
    assert "error" not in await call(nc, subject, email(smtp.port, smtp_password="pw-1"))
    refused_for(await call(nc, subject, email(smtp.port + 1)), "smtp_password")
    refused_for(await call(nc, subject, {**email(smtp.port), "smtp_host": "mail.attacker.example"}),
                "smtp_password")
    refused_for(await call(nc, subject, email(smtp.port, security="tls")), "smtp_password")
    kept = await call(nc, subject, email(smtp.port, from_name="NOC"))  # same destination: kept
    assert kept["smtp_password_set"] is True and kept["from_name"] == "NOC"
    moved = await call(nc, subject, email(smtp.port + 1, smtp_password="pw-1"))  # given again: fine
    assert "error" not in moved and moved["smtp_port"] == smtp.port + 1
    await call(nc, subject, email(smtp.port, smtp_password=""))


async def test_moving_the_sms_api_needs_the_token_again(nc: NatsClient, twilio: FakeTwilio) -> None:
    subject = "notifier.cmd.settings.sms"
    assert "error" not in await call(nc, subject, sms(twilio.base_url, auth_token="tok-" + uuid.uuid4().hex))
    refused_for(await call(nc, subject, sms("https://collector.attacker.example")), "auth_token")
    kept = await call(nc, subject, sms(twilio.base_url + "/", from_number="+15550002222"))
    assert "error" not in kept and kept["auth_token_set"] is True
    moved = await call(nc, subject, sms("https://api.twilio.com", auth_token="tok-new"))
    assert "error" not in moved


def test_the_sms_api_must_be_https_unless_insecure_providers_are_allowed() -> None:
    check_api_base_url("https://api.twilio.com", allow_insecure=False)
    check_api_base_url("http://127.0.0.1:9999", allow_insecure=True)
    for bad in ("http://api.twilio.com", "ftp://x.example", "https://user:pw@x.example",
                "https://x.example/?a=1", "https://"):
        with pytest.raises(ServiceError) as caught:
            check_api_base_url(bad, allow_insecure=False)
        assert caught.value.details[0].field == "api_base_url"


async def test_the_notifier_refuses_plain_http_by_default(service: Any, secret_key: str) -> None:
    strict = ChannelSettings(service.pool, EventStore(service.pool), Sealer(secret_key))
    with pytest.raises(ServiceError) as caught:
        await strict.set_sms(SmsSettingsIn.model_validate(sms("http://127.0.0.1:8080", auth_token="t")))
    assert "https" in caught.value.message


@pytest_asyncio.fixture(loop_scope="session")
async def not_smtp() -> AsyncIterator[int]:
    """A TCP port that answers something that is not SMTP, then hangs up (an internal service)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nServer: internal-admin 1.2\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_test_send_errors_do_not_map_the_network(nc: NatsClient, not_smtp: int) -> None:
    closed = free_port()
    reasons = []
    for port in (closed, not_smtp):
        assert "error" not in await call(nc, "notifier.cmd.settings.email", email(port, smtp_password=""))
        result = await call(nc, "notifier.cmd.settings.email.test", {"to": "x@carrier.example"}, timeout=30)
        assert result["delivered"] is False, result
        for leak in ("127.0.0.1", str(port), "Errno", "refused", "internal-admin", "HTTP/1.1"):
            assert leak not in result["reason"], result["reason"]
        reasons.append(result["reason"])
    assert reasons[0] == reasons[1]  # a closed port and a foreign service look alike
    assert "could not connect to the SMTP server" in reasons[0]
