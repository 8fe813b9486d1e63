"""SMTP security: STARTTLS and implicit TLS with a verified certificate (a private CA), AUTH, refusals."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier_testkit import FakeCustomers, SmtpServer, call, card, contact, make_certificates, settled

pytestmark = [
    pytest.mark.servers,
    # aiosmtpd warns when AUTH is required over implicit TLS (it only counts STARTTLS as TLS)
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

USERS = {"noc": "smtp-Secret-77"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    return make_certificates(Path(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="module")
def notifier_overrides(certificates: tuple[Path, ssl.SSLContext]) -> dict[str, Any]:
    """The notifier trusts the test CA (certificates are verified, as in production)."""
    return {"smtp_ca_file": certificates[0]}


@pytest.fixture(params=["starttls", "tls"])
def secure_smtp(
    request: pytest.FixtureRequest, certificates: tuple[Path, ssl.SSLContext]
) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), security=request.param, tls=certificates[1], users=USERS).start()
    yield server
    server.stop()


async def settings(nc: NatsClient, server: SmtpServer, password: str | None) -> None:
    body = {
        "from_address": "noc@carrier.example",
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "security": server.security,
        "smtp_username": "noc",
        "smtp_password": password,
    }
    reply = await call(nc, "notifier.cmd.settings.email", body)
    assert "error" not in reply, reply


async def test_encrypted_and_authenticated_delivery(
    nc: NatsClient, customers: FakeCustomers, secure_smtp: SmtpServer
) -> None:
    await settings(nc, secure_smtp, USERS["noc"])
    tag = uuid.uuid4().hex[:8]
    (c,) = customers.add(card(f"Tls {tag}", [contact("Tia", f"tia-{tag}@tls.example")]))
    reply = await call(
        nc,
        "notifier.cmd.send",
        {"channel": "email", "subject": "s", "body": "over TLS", "customer_ids": [c["id"]]},
    )
    final = await settled(nc, reply["message_id"])
    assert final["counts"]["sent"] == 1, final["items"]
    assert secure_smtp.inbox.to(f"tia-{tag}@tls.example")[0].body.strip() == "over TLS"
    # noc logged in, and no login was refused; the other e-mail worker may log in as well while
    # it sends what other tests left queued (the worker's NOTIFY, `strangers`)
    assert secure_smtp.logins and set(secure_smtp.logins) == {"noc"}, secure_smtp.logins
    assert secure_smtp.refused_logins == 0


async def test_a_wrong_password_is_retried_not_failed(
    nc: NatsClient, customers: FakeCustomers, secure_smtp: SmtpServer
) -> None:
    await settings(nc, secure_smtp, "wrong-password")
    tag = uuid.uuid4().hex[:8]
    (c,) = customers.add(card(f"Auth {tag}", [contact("Uma", f"uma-{tag}@tls.example")]))
    reply = await call(
        nc, "notifier.cmd.send", {"channel": "email", "subject": "s", "body": "b", "customer_ids": [c["id"]]}
    )

    async def retrying() -> dict[str, Any] | None:
        s = await call(nc, "notifier.query.message", {"message_id": reply["message_id"]})
        item = s["items"][0]
        return item if item["state"] == "retrying" and "535" in (item["last_error"] or "") else None

    await wait_for(retrying, timeout=10, message="an authentication failure, queued for a retry")
    await settings(nc, secure_smtp, USERS["noc"])  # the admin fixes the password
    final = await settled(nc, reply["message_id"], timeout=20)
    assert final["counts"]["sent"] == 1


async def test_an_untrusted_certificate_is_refused(
    nc: NatsClient, certificates: tuple[Path, ssl.SSLContext]
) -> None:
    self_signed_dir = Path(certificates[0]).parent / f"other-{uuid.uuid4().hex[:6]}"
    self_signed_dir.mkdir()
    _, other = make_certificates(self_signed_dir)  # a certificate from a CA the notifier does not trust
    server = SmtpServer(free_port(), security="tls", tls=other).start()
    try:
        await call(
            nc,
            "notifier.cmd.settings.email",
            {
                "from_address": "noc@carrier.example",
                "smtp_host": "127.0.0.1",
                "smtp_port": server.port,
                "security": "tls",
                "smtp_password": "",
            },
        )
        result = await call(nc, "notifier.cmd.settings.email.test", {"to": "x@tls.example"})
        assert result["delivered"] is False and "CERTIFICATE_VERIFY_FAILED" in result["reason"], result
        assert server.inbox.count() == 0
    finally:
        server.stop()
