"""The demo's message catchers: a tiny local SMTP server and SMS API the demo's settings point at.

So e-mails and SMS sent in demo mode (the board's Send e-mail / SMS, password e-mails, the
portal's verification codes) are delivered: each is logged (`demo_mail_received`: to, subject,
the text's first lines, where a code is; `demo_sms_received`: to, text) and the latest are kept
in `.patchbay-demo/demo/mail.json`. Both listen on 127.0.0.1 only and never relay anything.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import structlog

log = structlog.get_logger()

KEPT = 20
MAX_BYTES = 1_000_000  # one message at most; larger ones are refused (552)


def _summary(raw: bytes, recipients: list[str]) -> dict[str, Any]:
    """What the log and the file keep of one message: to, subject, the text's first lines."""
    msg = message_from_bytes(raw, policy=policy.default)
    part = msg.get_body(preferencelist=("plain", "html")) if msg.is_multipart() else msg
    text = part.get_content() if part is not None else ""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()][:6]
    return {"to": recipients, "subject": str(msg.get("Subject", "")), "text": lines,
            "at": datetime.now(UTC).isoformat()}


class MailCatcher:
    """Speaks just enough SMTP (HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to take mail."""

    def __init__(self, keep_in: Path) -> None:
        self.keep_in = keep_in
        self.kept: list[dict[str, Any]] = []
        self.port = 0
        self.sms_port = 0

    def _keep(self, entry: dict[str, Any]) -> None:
        self.kept = [entry, *self.kept][:KEPT]
        tmp = self.keep_in.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mail": self.kept}, indent=1))
        tmp.replace(self.keep_in)

    async def start_sms(self) -> asyncio.Server:
        """Listen for the SMS API's `POST .../Messages.json` (as Twilio's) on a free port."""
        server = await asyncio.start_server(self._sms, "127.0.0.1", 0)
        self.sms_port = int(server.sockets[0].getsockname()[1])
        return server

    async def _sms(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode(errors="replace").split()
            length = 0
            while (header := (await reader.readline()).decode(errors="replace").strip()):
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = min(int(value.strip() or 0), MAX_BYTES)
            form = parse_qs((await reader.readexactly(length)).decode(errors="replace"))
            if len(request) < 2 or request[0] != "POST" or not request[1].endswith("/Messages.json"):
                status, answer = "404 Not Found", {"code": 20404, "message": "not found", "status": 404}
            else:
                entry = {"to": form.get("To", [""])[0], "sms": form.get("Body", [""])[0][:500],
                         "at": datetime.now(UTC).isoformat()}
                log.info("demo_sms_received", **entry)
                self._keep(entry)
                status, answer = "201 Created", {"sid": "SM" + secrets.token_hex(16), "status": "queued",
                                                 "to": entry["to"], "body": entry["sms"]}
            data = json.dumps(answer).encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self) -> asyncio.Server:
        """Listen on a free port of 127.0.0.1."""
        server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        return server

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        recipients: list[str] = []
        try:
            await say("220 patchbay-demo mail catcher")
            while line := (await reader.readline()).decode(errors="replace").strip():
                verb = line[:4].upper()
                if verb == "EHLO":
                    await say("250-patchbay-demo")
                    await say(f"250 SIZE {MAX_BYTES}")
                elif verb == "HELO":
                    await say("250 patchbay-demo")
                elif verb in ("MAIL", "RSET"):
                    recipients = []
                    await say("250 OK")
                elif verb == "RCPT":
                    recipients.append(line.partition(":")[2].strip().strip("<>").split(">")[0])
                    await say("250 OK")
                elif verb == "DATA":
                    await say("354 end with <CRLF>.<CRLF>")
                    await self._data(reader, recipients, say)
                    recipients = []
                elif verb == "QUIT":
                    await say("221 bye")
                    break
                elif verb == "NOOP":
                    await say("250 OK")
                else:
                    await say("502 not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _data(self, reader: asyncio.StreamReader, recipients: list[str], say: Any) -> None:
        body = bytearray()
        while (chunk := await reader.readline()) not in (b".\r\n", b".\n", b""):
            body += chunk[1:] if chunk.startswith(b"..") else chunk
        if len(body) > MAX_BYTES:
            await say("552 too large")
            return
        entry = _summary(bytes(body), recipients)
        log.info("demo_mail_received", **entry)
        self._keep(entry)
        await say("250 OK kept")


async def point_settings_at(http: str, token: str, catcher: MailCatcher) -> bool:
    """PUT the demo's e-mail and SMS settings (every start: the catchers' ports are new each time).

    Waits for the notifier as long as it takes (it may still be starting, or restarting): the
    demo's mails are queued meanwhile and sent once the settings are in. `demo_mail_settings` is
    logged only when both are stored; False when the notifier refused them.
    """
    email = {"from_address": "noc@patchbay-demo.example", "from_name": "Patchbay demo carrier",
             "smtp_host": "127.0.0.1", "smtp_port": catcher.port, "security": "none"}
    # the SMS API's token is a fixed demo value: the catcher checks nothing
    sms = {"account_sid": "AC" + "0" * 32, "auth_token": "demo-sms-catcher", "from_number": "+15005550006",
           "api_base_url": f"http://127.0.0.1:{catcher.sms_port}"}
    async with httpx.AsyncClient(base_url=http, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        for path, body in (("/v1/settings/email", email), ("/v1/settings/sms", sms)):
            if not await _put(api, path, body):
                return False
    log.info("demo_mail_settings", smtp=f"127.0.0.1:{catcher.port}", sms=sms["api_base_url"])
    return True


async def _put(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> bool:
    """PUT until stored (True) or refused (False); while the notifier is away, try again every few s."""
    attempt = 0
    while True:
        try:
            reply = await api.put(path, json=body)
        except httpx.TransportError:
            reply = None
        if reply is not None and reply.status_code < 400:
            return True
        if reply is not None and reply.status_code != 429 and reply.status_code < 500:
            log.warning("demo_settings_refused", path=path, status=reply.status_code, answer=reply.text[:300])
            return False
        attempt += 1
        if attempt % 12 == 0:  # about every minute: say why the demo's mail is not going out yet
            log.warning("demo_settings_waiting", path=path, attempts=attempt,
                        status=reply.status_code if reply is not None else None)
        await asyncio.sleep(min(0.5 * 2 ** min(attempt, 4), 5.0))
