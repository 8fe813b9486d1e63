"""`python -m notifier` as a process: killed -9 in the middle of a broadcast, restarted, nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from devtools.embedded import free_port
from devtools.testing.jetstream import stream_messages
from devtools.testing.waiting import holds_for, wait_for
from nats.aio.client import Client as NatsClient
from notifier.application.recovery import CUT
from notifier_testkit import FakeCustomers, FakeTwilio, SmtpServer, call, card, contact, use_twilio
from shared.contracts.notify import SystemMessage
from shared.secrets import Sealer
from strangers import strangers_queued

pytestmark = pytest.mark.servers


@dataclass
class NotifierProcess:
    """The notifier as a child process, restartable, with its log in a file."""

    env: dict[str, str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    strangers: list[str] | None = None  # other tests' leftovers, queued at the first start

    async def start(self, nc: NatsClient) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "notifier",
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )

        async def answers() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"notifier exited: {self.log_path.read_text()[-3000:]}")
            try:
                await nc.request("notifier.query.settings.email", b"{}", timeout=0.5)
                return True
            except Exception:
                return False

        await wait_for(answers, timeout=30, interval=0.1, message="the notifier process to answer")
        if self.strangers is None:
            self.strangers = await strangers_queued(self.env["PATCHBAY_NATS_URL"])

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest_asyncio.fixture(loop_scope="session")
async def notifier(
    nats_url: str, make_database: Any, secret_key: str, customers: FakeCustomers, tmp_path: Path
) -> AsyncIterator[NotifierProcess]:
    env = os.environ | {
        "PATCHBAY_NATS_URL": nats_url,
        "PATCHBAY_DATABASE_URL": await make_database(),
        "PATCHBAY_SECRET_KEY": secret_key,
        "PATCHBAY_DATA_DIR": str(tmp_path / "data"),
        "PATCHBAY_LOG_FORMAT": "json",
        "PATCHBAY_LOG_LEVEL": "DEBUG",
        "PATCHBAY_RETRY_BASE_S": "0.2",
        "PATCHBAY_RECOVERY_INTERVAL_S": "0.5",
        "PATCHBAY_OPS_PORT": str(free_port()),
        "PATCHBAY_IDLE_POLL_S": "0.1",
        "PATCHBAY_ALLOW_INSECURE_PROVIDERS": "1",  # the Twilio double speaks plain http
    }
    process = NotifierProcess(env, tmp_path / "notifier.log")
    yield process
    await process.stop()


async def settled(nc: NatsClient, message_id: str, recipients: int, timeout: float) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        reply = await call(nc, "notifier.query.message", {"message_id": message_id, "limit": 5000})
        counts = reply["counts"]
        return reply if counts["sent"] + counts["failed"] == recipients else None

    return await wait_for(done, timeout=timeout, interval=0.2, message="every recipient to be settled")


def missing_report(final: dict[str, Any], missing: set[str], log_path: Path) -> str:
    """What the notifier recorded for recipients the provider never got, and its log about them."""
    rows = [i for i in final["items"] if i["to"] in missing]
    ids = {r["delivery_id"] for r in rows}
    lines = [ln for ln in log_path.read_text().splitlines()
             if any(i in ln for i in ids) or "claims_settled" in ln or "orphaned" in ln]
    return f"{len(missing)} recipients got nothing; recorded as {rows}; log: {lines[-20:]}"


async def broadcast_killed_at_a_third(
    notifier: NotifierProcess, nats: NatsClient, channel: str, cards: list[dict[str, Any]],
    arrived: Callable[[], int],
) -> dict[str, Any]:
    """Broadcast to 1,000 recipients, kill -9 the notifier when a third arrived, restart it; the settled status."""
    sent = await call(
        nats,
        "notifier.cmd.send",
        {
            "channel": channel,
            **({"subject": "Notice for {{customer.name}}"} if channel == "email" else {}),
            "body": "Hello {{contact.name}}",
            "customer_ids": [c["id"] for c in cards],
        },
        timeout=30,
    )
    assert sent["recipients"] == 1000, sent
    await wait_for(lambda: arrived() >= 300, timeout=60, interval=0.005,
                   message="a third of the broadcast to arrive")
    await notifier.kill()
    assert arrived() < 1000, "the broadcast finished before the kill: nothing was tested"
    await notifier.start(nats)
    return await settled(nats, sent["message_id"], 1000, timeout=90)


async def test_kill_9_in_the_middle_of_a_broadcast_sends_each_recipient_exactly_one(
    notifier: NotifierProcess, nats: NatsClient, customers: FakeCustomers, smtp: SmtpServer
) -> None:
    await notifier.start(nats)
    reply = await call(
        nats,
        "notifier.cmd.settings.email",
        {
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
        },
    )
    assert "error" not in reply, reply
    tag = uuid.uuid4().hex[:8]
    cards = customers.add(
        *[
            card(f"Kill {tag} {i}", [contact(f"C{i}-{j}", f"c{i}-{j}-{tag}@kill.example") for j in range(10)])
            for i in range(100)
        ]
    )
    expected = {f"c{i}-{j}-{tag}@kill.example" for i in range(100) for j in range(10)}

    def ours() -> list[str]:  # the worker's NOTIFY queue holds other tests' messages too (`strangers`)
        with smtp.inbox.lock:
            return [m.rcpt for m in smtp.inbox.messages if m.rcpt in expected]

    final = await broadcast_killed_at_a_third(notifier, nats, "email", cards, lambda: len(ours()))
    per_recipient = Counter(ours())
    # a kill between the two journal notes around one message's final write (microseconds, no
    # await) leaves that one delivery's outcome unknown: recorded failed as such, never re-sent,
    # so it may have arrived once or not at all; at most one per killed process
    cut = {i["to"] for i in final["items"] if i["state"] == "failed" and i["last_error"] == CUT}
    assert len(cut) <= 1, cut
    missing = expected - set(per_recipient) - cut
    assert not missing, missing_report(final, missing, notifier.log_path)
    # nothing of this broadcast went to an address it does not hold
    assert {r for r in smtp.inbox.per_recipient() if tag in r} <= expected
    twice = {rcpt: n for rcpt, n in per_recipient.items() if n != 1}
    assert not twice, f"{len(twice)} recipients got more than one copy: {list(twice.items())[:5]}"
    assert final["counts"]["sent"] == 1000 - len(cut), final["counts"]
    ops = f"http://127.0.0.1:{notifier.env['PATCHBAY_OPS_PORT']}"
    async with httpx.AsyncClient(base_url=ops) as http:
        assert (await http.get("/readyz")).json()["ready"] is True
        metrics = (await http.get("/metrics")).text
    assert 'patchbay_notifier_deliveries_total{channel="email",outcome="sent"}' in metrics
    assert "patchbay_notifier_recovered_claims_total" in metrics


async def test_kill_9_in_the_middle_of_an_sms_broadcast_texts_each_number_exactly_once(
    notifier: NotifierProcess, nats: NatsClient, customers: FakeCustomers, twilio: FakeTwilio
) -> None:
    await notifier.start(nats)
    await use_twilio(nats, twilio)
    base = uuid.uuid4().int % 1_000_000  # this test's own numbers: 1,000 in a block of its own
    numbers = [f"+4915{base:06d}{n:03d}" for n in range(1000)]
    mine = set(numbers)
    tag = uuid.uuid4().hex[:8]
    cards = customers.add(
        *[card(f"Text {tag} {i}", [contact(f"C{i}-{j} {tag}", mobile=numbers[i * 10 + j]) for j in range(10)])
          for i in range(100)]
    )

    def ours() -> list[str]:  # the worker's NOTIFY queue holds other tests' texts too (`strangers`)
        return [r["To"] for r in list(twilio.requests) if r.get("To") in mine]

    final = await broadcast_killed_at_a_third(notifier, nats, "sms", cards, lambda: len(ours()))
    per_number = Counter(ours())
    # as for e-mail: a kill between the notes around one request's last byte leaves that one
    # text's outcome unknown (failed as such, never re-sent): zero or one copy
    cut = {i["to"] for i in final["items"] if i["state"] == "failed" and i["last_error"] == CUT}
    assert len(cut) <= 1, cut
    assert set(numbers) - cut <= set(per_number)
    # nothing of this broadcast (its texts name the tag: "Hello C<i>-<j> <tag>") went elsewhere
    sent_to = {r["To"] for r in list(twilio.requests) if tag in r.get("Body", "")}
    assert sent_to and sent_to <= mine, sorted(sent_to - mine)[:5]
    twice = {number: n for number, n in per_number.items() if n != 1}
    assert not twice, f"{len(twice)} numbers got more than one text: {list(twice.items())[:5]}"
    assert final["counts"]["sent"] == 1000 - len(cut), final["counts"]


async def test_password_messages_never_reach_logs_or_events(
    notifier: NotifierProcess, nats: NatsClient, smtp: SmtpServer, secret_key: str
) -> None:
    await notifier.start(nats)
    reply = await call(
        nats,
        "notifier.cmd.settings.email",
        {
            "from_address": "noc@carrier.example",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "security": "none",
            "smtp_username": None,
            "smtp_password": "smtp-pw-" + uuid.uuid4().hex,
        },
    )
    assert "error" not in reply and reply["smtp_password"] is None and reply["smtp_password_set"]
    password = "Pw-" + uuid.uuid4().hex
    to = f"new-{uuid.uuid4().hex[:8]}@contact.example"
    message = SystemMessage(
        notification_id=str(uuid.uuid4()),
        channel="email",
        template="contact_password",
        to=to,
        variables={"contact_name": "Nia", "customer_name": "Acme"},
        sealed_secret=Sealer(secret_key).seal(password),
    )
    js = nats.jetstream()
    for copy in range(2):  # the same notification twice (past the dedup window): still one e-mail
        await js.publish(
            message.subject,
            message.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{message.notification_id}-{copy}"},
        )
    await wait_for(lambda: smtp.inbox.to(to), timeout=20, message="the password e-mail")
    got = smtp.inbox.to(to)[0]
    assert password in got.body and "Hello Nia" in got.body
    await holds_for(lambda: len(smtp.inbox.to(to)) == 1, 1.0,
                    "the second copy of the notification must not send a second e-mail")

    seen = await stream_messages(js, "events.notification.>")  # all of them, or it fails
    mine = [m for m in seen if to.encode() in m]
    assert [json.loads(m)["type"] for m in mine].count("DeliverySent") == 1
    assert not any(password.encode() in m for m in seen)
    await notifier.stop()
    text = notifier.log_path.read_text()
    assert "system_messages_queued" in text and password not in text
    assert "smtp-pw-" not in text
