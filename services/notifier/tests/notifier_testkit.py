"""Real stand-ins for the outside world: an SMTP server (aiosmtpd), a Twilio-like HTTP API, a customer service."""

from __future__ import annotations

import base64
import email
import email.policy
import ipaddress
import json
import os
import ssl
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription


async def call(nc: NatsClient, subject: str, payload: dict[str, Any], timeout: float = 10.0) -> Any:
    """One request; the JSON reply."""
    msg = await nc.request(subject, json.dumps(payload, default=str).encode(), timeout=timeout)
    return json.loads(msg.data)


@dataclass(frozen=True)
class Received:
    """One message the SMTP server accepted."""

    rcpt: str
    message_id: str
    subject: str
    body: str
    sender: str


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; some addresses can be refused."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 no such user"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        """Refuse the programmed addresses; take the rest."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message, parsed."""
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append(
                    Received(
                        rcpt, str(parsed["Message-ID"]), str(parsed["Subject"]), text, str(parsed["From"])
                    )
                )
        return "250 2.0.0 Message accepted for delivery"

    def count(self) -> int:
        """How many messages were accepted."""
        with self.lock:
            return len(self.messages)

    def per_recipient(self) -> Counter[str]:
        """How many messages each address got."""
        with self.lock:
            return Counter(m.rcpt for m in self.messages)

    def to(self, address: str) -> list[Received]:
        """The messages one address got."""
        with self.lock:
            return [m for m in self.messages if m.rcpt == address]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in its own thread; restartable on the same port; optionally TLS and AUTH."""

    def __init__(
        self,
        port: int,
        inbox: Inbox | None = None,
        *,
        security: str = "none",
        tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.inbox = inbox or Inbox()
        self.security = security
        self.tls = tls
        self.users = users
        self.logins: list[str] = []
        self.refused_logins = 0
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        login, password = data.login.decode(), data.password.decode()
        ok = self.users is not None and self.users.get(login) == password
        if ok:
            self.logins.append(login)
        else:
            self.refused_logins += 1
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        """Listen."""
        options: dict[str, Any] = {}
        if self.users is not None:
            options |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": self.security == "starttls",
            }
        if self.security == "starttls":
            options |= {"tls_context": self.tls, "require_starttls": True}
        elif self.security == "tls":
            options |= {"ssl_context": self.tls}
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def make_certificates(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A private CA (its PEM file) and a server TLS context with a certificate it signed for 127.0.0.1."""
    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Patchbay test CA"))
        .issuer_name(name("Patchbay test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


@dataclass
class FakeTwilio:
    """An HTTP server answering like Twilio's Messages API: 201 with a sid, 400 code 21211 for bad numbers."""

    bad_numbers: set[str] = field(default_factory=set)
    requests: list[dict[str, str]] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def _create(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        fields = {k: str(v) for k, v in form.items()}
        self.requests.append(fields)
        self.auth_seen.append(request.headers.get("Authorization", ""))
        to = fields.get("To", "")
        if to in self.bad_numbers:
            return web.json_response(
                {
                    "code": 21211,
                    "message": f"The 'To' number {to} is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
                status=400,
            )
        sid = "SM" + uuid.uuid4().hex
        return web.json_response(
            {
                "sid": sid,
                "account_sid": request.match_info["sid"],
                "to": to,
                "from": fields.get("From"),
                "body": fields.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/x/Messages/{sid}.json",
            },
            status=201,
        )

    async def start(self) -> FakeTwilio:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def base_url(self) -> str:
        """What the SMS settings' api_base_url should be."""
        return f"http://127.0.0.1:{self.port}"

    def to(self, number: str) -> list[dict[str, str]]:
        """Requests for one number."""
        return [r for r in self.requests if r.get("To") == number]

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()


def contact(name: str, email_address: str | None = None, mobile: str | None = None) -> dict[str, Any]:
    """A contact as the customer card shows it."""
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "email": email_address,
        "mobile": mobile,
        "phone": None,
        "contact_type": "general",
        "public_notes": "",
        "private_notes": "",
        "ip_whitelist": [],
        "email_verified": False,
        "mobile_verified": False,
    }


def card(name: str, contacts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A customer card with contacts (the fields the notifier reads)."""
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "contacts": contacts,
        "deleted": False,
        "tags": [],
        **extra,
    }


@dataclass
class FakeCustomers:
    """A tiny responder on the real nats-server for `customer.query.get`, `.list` and `.data-keys`."""

    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    subs: list[Subscription] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject -> data key item

    def add(self, *cards: dict[str, Any]) -> list[dict[str, Any]]:
        """Make cards known; return them."""
        for c in cards:
            self.cards[c["id"]] = c
        return list(cards)

    async def _get(self, msg: Msg) -> None:
        body = json.loads(msg.data)
        found = self.cards.get(body["customer_id"])
        reply = found or {"error": {"code": "not_found", "message": "no such customer", "details": []}}
        await msg.respond(json.dumps(reply).encode())

    async def _list(self, msg: Msg) -> None:
        body = json.loads(msg.data)
        items = [c for c in self.cards.values() if not body.get("tag") or set(body["tag"]) & set(c["tags"])]
        start = int(body.get("cursor") or 0)
        page = items[start : start + body.get("limit", 50)]
        more = start + len(page) < len(items)
        reply = {"items": page, "next_cursor": str(start + len(page)) if more else None, "total": len(items)}
        await msg.respond(json.dumps(reply).encode())

    async def _data_keys(self, msg: Msg) -> None:
        """`customer.query.data-keys` as the customer service answers it: a key per subject."""
        body = json.loads(msg.data)
        for subject in body.get("subjects", []):
            if subject not in self.keys:
                self.keys[subject] = {"key_id": f"k{len(self.keys)}", "subject": subject,
                                      "key": base64.b64encode(os.urandom(32)).decode()}
        wanted = set(body.get("key_ids", []))
        found = [k for s, k in self.keys.items() if s in body.get("subjects", []) or k["key_id"] in wanted]
        await msg.respond(json.dumps({"keys": found}).encode())

    async def start(self, nc: NatsClient) -> FakeCustomers:
        """Subscribe and make sure the server knows."""
        self.subs = [
            await nc.subscribe("customer.query.get", cb=self._get),
            await nc.subscribe("customer.query.list", cb=self._list),
            await nc.subscribe("customer.query.data-keys", cb=self._data_keys),
        ]
        await nc.flush()
        return self

    async def stop(self) -> None:
        """Unsubscribe."""
        for sub in self.subs:
            await sub.unsubscribe()


async def use_smtp(nc: NatsClient, port: int) -> None:
    """Point the e-mail settings at a local SMTP port."""
    reply = await call(
        nc,
        "notifier.cmd.settings.email",
        {
            "from_address": "noc@carrier.example",
            "from_name": "Carrier NOC",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": "none",
        },
    )
    assert "error" not in reply, reply


async def use_twilio(nc: NatsClient, twilio: FakeTwilio) -> None:
    """Point the SMS settings at the Twilio double."""
    reply = await call(
        nc,
        "notifier.cmd.settings.sms",
        {
            "account_sid": "AC" + "1" * 32,
            "auth_token": "tok-" + uuid.uuid4().hex,
            "from_number": "+15550001111",
            "api_base_url": twilio.base_url,
        },
    )
    assert "error" not in reply, reply


async def status(nc: NatsClient, message_id: str) -> dict[str, Any]:
    """A message's delivery status."""
    reply = await call(nc, "notifier.query.message", {"message_id": message_id})
    assert "error" not in reply, reply
    return dict(reply)


async def settled(nc: NatsClient, message_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until no recipient of the message is queued, sending or retrying."""

    async def done() -> dict[str, Any] | None:
        s = await status(nc, message_id)
        return s if s["counts"]["sent"] + s["counts"]["failed"] == s["recipients"] else None

    return await wait_for(done, timeout=timeout, interval=0.1, message=f"message {message_id} to settle")
