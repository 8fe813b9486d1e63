"""The SMS handover notes: INTENT right before the request's last byte, HANDED once it was written.

A Twilio-like endpoint in a thread of its own counts the body bytes that reached it; each note
(a synchronous callback, as the journal's write is) waits for the socket to settle and reads the
count. A kill -9 between the notes leaves an unknown outcome (failed as such); before, a single
note taken before the last byte called such a request sent, though Twilio never got all of it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
from notifier.adapters.sms_sender import SmsConfig, TwilioSender
from notifier.domain.retry import OutcomeKind

pytestmark = pytest.mark.servers


class CountingTwilio:
    """Answers `POST .../Messages.json` like Twilio (201 and a sid) once the whole body arrived."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.body_bytes = 0  # of the request being read
        self.length = -1
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> CountingTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            self.length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:"))
            self.body_bytes = len(body)
            while self.body_bytes < self.length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                self.body_bytes += len(chunk)
            sid = "SM" + uuid.uuid4().hex
            answer = json.dumps({"sid": sid, "status": "queued", "to": "+4915000000001",
                                 "uri": f"/2010-04-01/Accounts/x/Messages/{sid}.json"}).encode()
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         + f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer)

    def settled_count(self) -> int:
        """The body bytes received once nothing more arrives for 50 ms (this blocks the caller)."""
        deadline = time.monotonic() + 2.0
        last, still_since = self.body_bytes, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.005)
            if self.body_bytes != last:
                last, still_since = self.body_bytes, time.monotonic()
            elif time.monotonic() - still_since >= 0.05 and self.length >= 0:
                break
        return last


async def test_an_sms_is_noted_intent_before_its_last_byte_and_handed_after_it() -> None:
    twilio = CountingTwilio().start()
    sender = TwilioSender(SmsConfig(account_sid="AC" + "1" * 32, auth_token="tok", from_number="+15550001111",
                                    api_base_url=f"http://127.0.0.1:{twilio.port}"))
    seen: dict[str, int] = {}
    try:
        outcome = await sender.send(
            "+4915000000001", "hello",
            on_handover=lambda: seen.setdefault("handed", twilio.settled_count()),
            on_intent=lambda: seen.setdefault("intent", twilio.settled_count()),
        )
    finally:
        await sender.close()
        twilio.stop()
    assert outcome.kind is OutcomeKind.SENT and outcome.provider_id, outcome
    assert twilio.length > 0
    # at the intent Twilio lacks the request's last byte (it cannot act on it yet); at the
    # handover it has the whole request
    assert seen == {"intent": twilio.length - 1, "handed": twilio.length}, (seen, twilio.length)
