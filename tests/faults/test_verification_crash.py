"""kill -9 of the verification service under load (e-mail, mobile and CLI flows), then a restart.

Every acknowledged request has its effect once: one code (one NOTIFY message, one
`VerificationCodeSent`) per code request, one outcome event per confirmed code, in
JetStream and in verification's PostgreSQL; the customer card follows. A request sent while
the service is down fails (no responders or a timeout) and succeeds when retried after it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from shared.contracts.notify import SystemMessage
from shared.contracts.verification import VERIFIED_KINDS, VerificationStreams, VerificationSubjects
from shared.secrets import Sealer

from .load import RetryingClients
from .processes import Servers, ServiceProcess, running_service, service_env
from .verify import stored_events, wait_outbox_drained

pytestmark = [pytest.mark.servers, pytest.mark.faults]

PASSWORD = "fault-Password-0001"
CLI = "+442079460123"
MOBILE = "+14155550123"
S = VerificationSubjects
KILLS = 6


@pytest.fixture
def verification(servers: Servers, customer: ServiceProcess, embedded_tmp_path: Path) -> Iterator[ServiceProcess]:
    """The verification service as a process, ready (the default limit of 5 codes per contact)."""
    env = service_env(servers, PATCHBAY_REQUEST_TIMEOUT_S="2")
    with running_service("verification", env, embedded_tmp_path / "verification.log") as proc:
        yield proc


@dataclass(frozen=True)
class Acked:
    """One verification request the service answered with success."""

    kind: str  # request, confirm
    channel: str  # email, mobile, cli
    customer_id: str
    contact_id: str
    verification_id: str
    command_id: str
    attempts: int


@dataclass
class VerificationLoad(RetryingClients):
    """Concurrent portal users, each verifying a new contact's e-mail, mobile and CLI."""

    clients: int = 12
    give_up_s: float = 60.0
    key: str = ""  # the service's secret key: the test reads the codes on NOTIFY
    codes: dict[str, str] = field(default_factory=dict)  # verification id -> code (from NOTIFY)
    calls: dict[str, list[str]] = field(default_factory=dict)  # customer id -> codes spoken by the switch
    acked: list[Acked] = field(default_factory=list)

    @property
    def client(self) -> NatsClient:
        """The load's NATS connection."""
        assert self.nc is not None
        return self.nc

    def acked_count(self) -> int:
        """Requests acknowledged."""
        return len(self.acked)

    async def start(self) -> None:
        """Listen to NOTIFY and play the switch, then start the clients."""
        await self.client.subscribe("notify.>", cb=self._on_notify)
        await self.client.subscribe(VerificationStreams.TEST_CALL, cb=self._on_test_call)
        await self.client.flush()
        self.spawn(lambda _: self._client())

    async def _on_notify(self, msg: Msg) -> None:
        note = SystemMessage.model_validate_json(msg.data)
        if note.notification_id.startswith("verification:") and note.sealed_secret:
            self.codes[note.notification_id.removeprefix("verification:")] = Sealer(self.key).unseal(
                note.sealed_secret)

    async def _on_test_call(self, msg: Msg) -> None:
        call = json.loads(msg.data)
        self.calls.setdefault(call["customer_id"], []).append(call["code"])
        await msg.respond(b'{"accepted":true}')

    async def contact(self) -> tuple[str, str]:
        """A new customer with one contact (customer service: not killed, retried anyway)."""
        card = await self.call("customer.cmd.create", {"customer": {"name": f"vf-{uuid.uuid4().hex[:12]}"}})
        contact = {"name": "Ann", "email": f"vf-{uuid.uuid4().hex[:12]}@example.com", "mobile": MOBILE}
        card = await self.call("customer.cmd.contact.add", {"customer_id": card["id"], "password": PASSWORD,
                                                             "contact": contact})
        return str(card["id"]), str(card["contacts"][0]["id"])

    async def call(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        """A request that must succeed, retried on timeouts (with the same command id)."""
        if subject.startswith("customer.cmd."):
            body = body | {"meta": {"command_id": str(uuid.uuid4())}}
        for _ in range(30):
            try:
                reply: dict[str, Any] = orjson.loads((await self.client.request(subject, orjson.dumps(body),
                                                                            timeout=5)).data)
            except Exception:
                continue
            assert "error" not in reply, (subject, reply)
            return reply
        raise AssertionError(f"{subject} never answered")

    async def _client(self) -> None:
        while not self._stop.is_set():
            customer_id, contact_id = await self.contact()
            caller = {"customer_id": customer_id, "contact_id": contact_id, "ip": "127.0.0.1"}
            for channel in ("email", "mobile", "cli"):
                if self._stop.is_set():
                    return
                if not await self.verify(caller, channel):
                    break

    async def verify(self, caller: dict[str, str], channel: str, request_id: str | None = None) -> bool:
        """Request a code, read it where it arrives, confirm it; False when a step failed."""
        if channel == "cli":
            sent = await self.send("request", channel, caller, S.START_CLI, {"caller": caller, "number": CLI})
        else:
            sent = await self.send("request", channel, caller, S.REQUEST_CODE,
                                   {"caller": caller, "channel": channel}, request_id)
        if sent is None:
            return False
        vid = sent["verification_id"]
        if channel == "cli":
            code = self.calls[caller["customer_id"]][-1]
            body = {"caller": caller, "number": CLI, "code": code}
            subject = S.CONFIRM_CLI
        else:
            code = await wait_for(lambda: self.codes.get(vid), timeout=30, message=f"the code of {vid}")
            body = {"caller": caller, "channel": channel, "code": code}
            subject = S.CONFIRM_CODE
        done = await self.send("confirm", channel, caller, subject, body)
        if done is not None and done["verification_id"] != vid:
            self.unexpected.append(f"confirmed {done['verification_id']}, requested {vid}")
        return done is not None

    async def send(self, kind: str, channel: str, caller: dict[str, str], subject: str,
                   body: dict[str, Any], command_id: str | None = None) -> dict[str, Any] | None:
        """Send one request, with one idempotency key, until it gets a final answer; the reply if acked."""
        command_id = command_id or f"{kind}-{channel}-{uuid.uuid4()}"
        body = body | {"meta": {"command_id": command_id}}
        attempts = 0

        async def attempt() -> dict[str, Any] | str:
            nonlocal attempts
            attempts += 1
            return await self.attempt(subject, body)

        reply = await self.until_answered(f"{subject} {command_id}", attempt)
        if reply is not None:
            self.acked.append(Acked(kind, channel, caller["customer_id"], caller["contact_id"],
                                    reply["verification_id"], command_id, attempts))
        return reply

    async def attempt(self, subject: str, body: dict[str, Any]) -> dict[str, Any] | str:
        """One request: the decoded reply, or the name of what went wrong."""
        try:
            msg = await self.client.request(subject, orjson.dumps(body), timeout=self.timeout_s)
        except Exception as exc:  # timeout, no responders: both mean "try again"
            return type(exc).__name__
        reply: dict[str, Any] = orjson.loads(msg.data)
        return reply


async def stream_contents(nc: NatsClient, stream: str) -> list[tuple[str, dict[str, Any]]]:
    """(Nats-Msg-Id, decoded data) of every message in a stream, read by sequence (work queues too)."""
    js = nc.jetstream()
    state = (await js.stream_info(stream)).state
    out = []
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        assert msg.headers is not None and msg.data is not None
        out.append((msg.headers["Nats-Msg-Id"], json.loads(msg.data)))
    return out


async def codes_table(database_url: str) -> dict[str, asyncpg.Record]:
    """Every code row of verification's PostgreSQL, by verification id."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id::text AS id, contact_id::text AS contact_id, channel, status, events"
                                " FROM verification.codes")
        return {row["id"]: row for row in rows}
    finally:
        await conn.close()


async def card_verified(load: VerificationLoad, acked: list[Acked]) -> bool:
    """Every confirmed e-mail, mobile and CLI shows on its customer's card."""
    for ack in acked:
        card = await load.call("customer.query.get", {"customer_id": ack.customer_id})
        [contact] = card["contacts"]
        done = {"email": contact["email_verified"], "mobile": contact["mobile_verified"],
                "cli": CLI in card["approved_clis"]}
        if not done[ack.channel]:
            return False
    return True


async def test_kill_9_of_verification_mid_load_then_restart(
    servers: Servers, verification: ServiceProcess, client: NatsClient
) -> None:
    load = VerificationLoad(client, key=verification.env["PATCHBAY_SECRET_KEY"])
    probe_customer, probe_contact = await load.contact()
    probe = {"customer_id": probe_customer, "contact_id": probe_contact, "ip": "127.0.0.1"}
    await load.start()
    try:
        await load.wait_acked(60)
        # kill 1: a request sent while it is down fails; the same request succeeds after the restart
        verification.kill()
        request_id = f"probe-{uuid.uuid4()}"
        outage = await load.attempt(S.REQUEST_CODE, {"caller": probe, "channel": "email",
                                                     "meta": {"command_id": request_id}})
        assert isinstance(outage, str), f"answered while killed: {outage}"
        verification.start()
        await asyncio.to_thread(verification.wait_ready)
        assert await load.verify(probe, "email", request_id), "the probe's retry after the restart failed"
        for _ in range(KILLS - 1):  # then straight back, each time under load
            await load.wait_acked(40)
            verification.kill()
            verification.start()
            await asyncio.to_thread(verification.wait_ready)
        await load.wait_acked(40)
    finally:
        await load.stop()
    load.assert_survived()
    assert verification.starts == 1 + KILLS

    await wait_outbox_drained(servers.database_url, schema="verification", table="message_outbox")
    rows = await codes_table(servers.database_url)
    events = await stream_contents(client, VerificationStreams.STREAM)
    notes = [(mid, data) for mid, data in await stream_contents(client, "NOTIFY")
             if data["notification_id"].startswith("verification:")]

    # each event and each NOTIFY message once in JetStream
    twice = {mid: n for mid, n in Counter(mid for mid, _ in events + notes).items() if n > 1}
    assert not twice, f"published more than once: {list(twice.items())[:5]}"

    # one code (one row, one CodeSent, one message to the contact) per acknowledged request
    requests = [a for a in load.acked if a.kind == "request"]
    per_request = Counter((row["contact_id"], row["channel"]) for row in rows.values())
    doubled = [(a.command_id, a.attempts) for a in requests
               if per_request[(a.contact_id, a.channel)] != 1]
    assert not doubled, f"requests that made more than one code (retried after a lost reply): {doubled[:5]}"
    sent = Counter(data["stream_id"] for _, data in events if data["type"] == "VerificationCodeSent")
    assert sent == Counter(list(rows)), "VerificationCodeSent events differ from the codes in PostgreSQL"
    mailed = Counter(data["notification_id"].removeprefix("verification:") for _, data in notes)
    assert mailed == Counter(vid for vid, row in rows.items() if row["channel"] != "cli"), (
        "NOTIFY messages differ from the e-mail and mobile codes in PostgreSQL")
    for ack in requests:
        assert ack.verification_id in rows, f"acknowledged request {ack} has no code in PostgreSQL"

    # one outcome per confirmed code, in PostgreSQL (the code's state) and in JetStream
    outcomes = Counter(data["stream_id"] for _, data in events if data["type"] in VERIFIED_KINDS)
    verified = {vid: row for vid, row in rows.items() if row["status"] == "verified"}
    assert outcomes == Counter(list(verified)), "outcome events differ from the verified codes in PostgreSQL"
    for _, data in events:
        if data["type"] in VERIFIED_KINDS:
            assert data["version"] == verified[data["stream_id"]]["events"], data
    confirms = [a for a in load.acked if a.kind == "confirm"]
    for ack in confirms:
        assert ack.verification_id in verified, f"acknowledged confirmation {ack} is not verified"
    assert len(verified) == len(confirms), "codes verified without an acknowledged confirmation"

    # the customer service applied each outcome once, and every card shows it
    await wait_for(lambda: card_verified(load, confirms), timeout=30, interval=0.2,
                   message="every confirmed verification on its customer's card")
    applied = Counter(row["command_id"] for row in await stored_events(servers.database_url)
                      if (row["command_id"] or "").startswith("verification:"))
    assert set(applied.values()) == {1} and len(applied) == len(outcomes), applied.most_common(3)
    replayed = len(verification.log_lines("_replayed"))  # answers lost in a kill, given again
    print(json.dumps({"codes": len(rows), "verified": len(verified), "events": len(events),
                      "notify": len(notes), "replayed": replayed}))
