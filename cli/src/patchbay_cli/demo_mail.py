"""The demo's mail catcher: a tiny local SMTP server the demo's e-mail settings point at.

So e-mails sent from the console (Send e-mail, password e-mails, the portal's e-mail codes) are
delivered in demo mode: each one is logged as `demo_mail_received` (to, subject, and the text
body's first lines, where a verification code is) and the latest are kept in
`.patchbay-demo/demo/mail.json`. It only listens on 127.0.0.1 and never relays anything.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

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
        self.kept = [entry, *self.kept][:KEPT]
        tmp = self.keep_in.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mail": self.kept}, indent=1))
        tmp.replace(self.keep_in)
        await say("250 OK kept")


async def point_email_settings_at(http: str, token: str, port: int) -> None:
    """PUT the demo's e-mail settings (every start: the catcher's port is new each time)."""
    body = {"from_address": "noc@patchbay-demo.example", "from_name": "Patchbay demo carrier",
            "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none"}
    async with httpx.AsyncClient(base_url=http, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        for attempt in range(6):
            try:
                reply = await api.put("/v1/settings/email", json=body)
            except httpx.TransportError:
                reply = None
            if reply is not None and reply.status_code < 400:
                log.info("demo_mail_settings", smtp=f"127.0.0.1:{port}")
                return
            if reply is not None and reply.status_code != 429 and reply.status_code < 500:
                log.warning("demo_mail_settings_refused", status=reply.status_code, answer=reply.text[:300])
                return
            await asyncio.sleep(0.5 * 2**attempt)
    log.warning("demo_mail_settings_failed")

