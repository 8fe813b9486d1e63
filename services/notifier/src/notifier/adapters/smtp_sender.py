"""SMTP delivery with aiosmtplib: one connection reused for many messages, a handover hook per send."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr

import aiosmtplib
import structlog

from notifier.domain.rendering import header_safe
from notifier.domain.retry import Outcome, smtp_outcome

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect (from the e-mail settings; the password already unsealed)."""

    host: str
    port: int
    security: str
    from_address: str
    from_name: str = ""
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    validate_certs: bool = True
    ca_file: str | None = None  # a private CA to trust (an internal relay), beside the system's


@dataclass(frozen=True)
class Email:
    """One e-mail to one recipient; `message_key` makes its Message-ID the same on every attempt."""

    to: str
    subject: str
    body: str
    message_key: str


def _header(text: str) -> str:
    """One header value: folded to one line, RFC 2047-encoded when it is not ASCII."""
    text = header_safe(text)
    return text if text.isascii() and len(text) < 900 else Header(text, "utf-8", maxlinelen=76).encode()


def build_message(cfg: SmtpConfig, mail: Email) -> bytes:
    """The RFC 5322 message as bytes: plain text, UTF-8 (base64), a stable Message-ID.

    Written out directly: `email.message.EmailMessage` with the default policy parses and refolds
    every header, and measured here it cost more CPU per message than the whole SMTP exchange.
    """
    if not mail.to or any(c in mail.to for c in "\r\n<>,") or not mail.to.isprintable():
        raise ValueError(f"not a deliverable address: {mail.to!r}")
    domain = cfg.from_address.rpartition("@")[2] or "patchbay.invalid"
    head = (
        f"From: {formataddr((header_safe(cfg.from_name), cfg.from_address), charset='utf-8')}\r\n"
        f"To: {mail.to}\r\n"
        f"Subject: {_header(mail.subject)}\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <{mail.message_key}@{domain}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    body = base64.encodebytes(mail.body.encode()).replace(b"\n", b"\r\n")
    return head.encode("ascii") + body


def tls_context_for(cfg: SmtpConfig) -> ssl.SSLContext | None:
    """The TLS context: the system's trust (plus a private CA), or none at all when told not to verify."""
    if cfg.security == "none":
        return None
    context = ssl.create_default_context(cafile=cfg.ca_file)
    if not cfg.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpSender:
    """Sends e-mails over one SMTP connection, reconnecting when it breaks."""

    def __init__(self, cfg: SmtpConfig) -> None:
        self.cfg = cfg
        self._smtp: aiosmtplib.SMTP | None = None
        self._on_final_write: tuple[Callable[[], None], Callable[[], None]] | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.cfg
        tls_context = tls_context_for(cfg)
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.security == "tls",
            start_tls=True if cfg.security == "starttls" else False,
            validate_certs=cfg.validate_certs,
            tls_context=tls_context,
            timeout=cfg.timeout_s,
        )
        await smtp.connect()
        if cfg.username:
            try:
                await smtp.login(cfg.username, cfg.password or "")
            except BaseException:  # a refused login: the connection is not kept, so close it here
                smtp.close()
                raise
        self._hook(smtp)
        return smtp

    def _hook(self, smtp: aiosmtplib.SMTP) -> None:
        """Call the armed callbacks right before and right after the write that ends DATA."""
        protocol = smtp.protocol
        assert protocol is not None
        original = protocol.write

        def write(data: bytes) -> None:
            callbacks = self._on_final_write
            if callbacks is None or not data.endswith(b".\r\n"):
                original(data)
                return
            self._on_final_write = None
            callbacks[0]()  # about to write the message's last bytes
            original(data)  # a socket send: the bytes are the kernel's now
            callbacks[1]()

        protocol.write = write  # type: ignore[method-assign]

    async def send(
        self, mail: Email, on_handover: Callable[[], None], on_intent: Callable[[], None] = lambda: None
    ) -> Outcome:
        """Send one e-mail; `on_intent` runs right before its final bytes are written, `on_handover` after."""
        reused = self._smtp is not None and self._smtp.is_connected
        outcome = await self._send_once(mail, on_handover, on_intent)
        if reused and outcome.link_down:  # a kept connection the server had closed: one fresh try
            outcome = await self._send_once(mail, on_handover, on_intent)
        return outcome

    async def _send_once(
        self, mail: Email, on_handover: Callable[[], None], on_intent: Callable[[], None]
    ) -> Outcome:
        handed = False

        def intent() -> None:
            nonlocal handed
            on_intent()
            handed = True  # from here on the server may have it

        try:
            message = build_message(self.cfg, mail)
        except ValueError as exc:  # no server can take it: fail it without a connection
            return Outcome.permanent(str(exc))
        try:
            if self._smtp is None or not self._smtp.is_connected:
                self._smtp = await self._connect()
            self._on_final_write = (intent, on_handover)
            errors, reply = await self._smtp.sendmail(self.cfg.from_address, [mail.to], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            await self._reset()
            return smtp_outcome(first.code if first else None, first.message if first else str(exc))
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            OSError,
        ) as exc:
            await self.close()
            if handed:  # the server may have taken it: a retry could deliver it twice
                return Outcome.handed_over(f"no reply after the message was sent: {type(exc).__name__}")
            return Outcome.unreachable(f"SMTP connection: {type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPAuthenticationError as exc:  # at login: nothing of the message went
            await self.close()
            return smtp_outcome(exc.code, exc.message, at_login=True)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            return smtp_outcome(exc.code, exc.message)
        except aiosmtplib.SMTPException as exc:
            await self.close()
            return Outcome.transient(f"SMTP: {type(exc).__name__}: {exc}")
        except ValueError as exc:  # aiosmtplib refuses an address that could inject a command
            await self._reset()
            return Outcome.permanent(f"not a deliverable address: {exc}")
        finally:
            self._on_final_write = None
        if errors:  # one recipient per message: a refusal shows up as an exception above
            refused = next(iter(errors.values()))
            return smtp_outcome(refused.code, refused.message)
        return Outcome.sent(reply.strip()[:200] if reply else None)

    async def _reset(self) -> None:
        """Leave the failed transaction (or the connection, if that fails too)."""
        try:
            if self._smtp is not None and self._smtp.is_connected:
                await self._smtp.rset()
        except Exception:
            await self.close()

    async def close(self) -> None:
        """Say goodbye and drop the connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await smtp.quit()
        except Exception:
            smtp.close()
