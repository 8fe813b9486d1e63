"""Verification handlers: check the portal session, then decide, store and publish in one transaction.

Codes travel only sealed (NOTIFY) or to the switch (the test call must speak them); outcomes
are events on VERIFICATION_EVENTS, written to the outbox in the same transaction as the code's
new state, so an acknowledged outcome is never lost and a code is never used twice. A request
retried with the same `meta.command_id` (its reply was lost) gets its first answer again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from shared.contracts.contacts import ContactSubjects
from shared.contracts.events import REGISTRY
from shared.contracts.events.verification import (
    OUTCOMES,
    VerificationCodeRejected,
    VerificationCodeSent,
    VerificationEvent,
)
from shared.contracts.notify import SystemMessage
from shared.contracts.verification import (
    ConfirmCli,
    ConfirmCode,
    ConfirmLink,
    PortalCaller,
    RequestCode,
    StartCliCheck,
    TestCallRequest,
    VerificationStreams,
)
from shared.envelope import Actor, Metadata
from shared.errors import ErrorCode, ErrorReply, ServiceError
from shared.ids import new_id
from shared.logging import CORRELATION_HEADER, current_correlation_id
from shared.message_outbox import OutboxMessage
from shared.personal_data import DataKey, KeyProvider, SubjectErased, contact_subject, encrypt_event
from shared.rpc import dumps
from shared.secrets import Sealer

from verification.application import store
from verification.domain import codes
from verification.domain.test_calls import TestCallPolicy

log = structlog.get_logger(__name__)

Send = Callable[[codes.CodeRecord, str, str], Awaitable[list[OutboxMessage]]]
Guard = Callable[[asyncpg.Connection, codes.CodeRecord], Awaitable[None]]  # may refuse a new code


@dataclass(frozen=True)
class Limits:
    """How long codes live, how many tries, how many requests per window."""

    code_ttl_s: float = 600.0
    max_attempts: int = 5
    requests_per_window: int = 5
    request_window_s: float = 600.0
    request_timeout_s: float = 5.0
    test_calls: TestCallPolicy = field(default_factory=TestCallPolicy)


def _event(
    record: codes.CodeRecord, event_type: type[VerificationEvent], version: int, actor: Actor,
    key: DataKey | None, **data: Any,
) -> OutboxMessage:
    ids = {"customer_id": str(record.customer_id), "contact_id": str(record.contact_id),
           "channel": record.channel, "verification_id": str(record.id)}
    event = event_type.model_validate(ids | data)
    envelope = REGISTRY.envelope(
        event,
        category=VerificationStreams.CATEGORY,
        stream_id=str(record.id),
        version=version,
        metadata=Metadata(actor=actor, correlation_id=current_correlation_id()),
    )
    if key is not None:  # the target is the contact's personal data (product.md section 15)
        envelope = encrypt_event(envelope, key)
    headers = {"Patchbay-Event-Type": event_type.TYPE}
    if envelope.metadata.correlation_id:
        headers[CORRELATION_HEADER] = envelope.metadata.correlation_id
    return OutboxMessage(
        envelope.subject, str(envelope.event_id), envelope.model_dump_json().encode(), headers
    )


class VerificationService:
    """E-mail and mobile codes, CLI test calls, and their confirmations."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        sealer: Sealer,
        pepper: bytes,
        *,
        link_base: str,
        limits: Limits = Limits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keys: KeyProvider | None = None,
    ) -> None:
        self.keys = keys  # data keys for the events' targets (None: written in plaintext)
        self.pool = pool
        self.nc = nc
        self.sealer = sealer
        self.pepper = pepper
        self.link_base = link_base
        self.limits = limits
        self.clock = clock

    async def request_code(self, req: RequestCode) -> bytes:
        """Send a new code to the contact's e-mail (with a link) or mobile."""
        view = await self._session(req.caller)
        contact = view["contact"]
        target = contact["email"] if req.channel == "email" else contact["mobile"]
        if not target:
            raise ServiceError(ErrorCode.VALIDATION, "the contact has no mobile number to send a code to")
        return await self._issue(
            req.caller, contact["name"], req.channel, target, send=self._notify,
            command_id=req.meta.command_id,
        )

    async def start_cli(self, req: StartCliCheck) -> bytes:
        """Ask the switch for a test call that speaks a code to the number (if the policy allows)."""
        view = await self._session(req.caller)
        self.limits.test_calls.check_number(req.number)
        return await self._issue(
            req.caller, view["contact"]["name"], "cli", req.number, send=self._test_call,
            command_id=req.meta.command_id, guard=self._daily_cap,
        )

    async def _daily_cap(self, conn: asyncpg.Connection, record: codes.CodeRecord) -> None:
        since = self.clock() - timedelta(days=1)
        self.limits.test_calls.check_count(await store.test_calls_since(conn, record.customer_id, since))

    async def _key(self, contact_id: str) -> DataKey | None:
        """The contact's data key (asked of the customer service); refused once it was erased."""
        if self.keys is None:
            return None
        subject = contact_subject(contact_id)
        try:
            return (await self.keys.for_subjects([subject]))[subject]
        except SubjectErased:
            raise ServiceError(ErrorCode.ERASED, "this contact's personal data was erased") from None

    async def confirm_code(self, req: ConfirmCode) -> bytes:
        """The code the contact typed for its e-mail or mobile."""
        view = await self._session(req.caller)
        target = view["contact"]["email"] if req.channel == "email" else view["contact"]["mobile"]
        actor = _actor(req.caller, view["contact"]["name"])
        return await self._confirm(
            str(req.caller.contact_id), req.channel, target or "", req.code, actor, req.meta.command_id
        )

    async def confirm_cli(self, req: ConfirmCli) -> bytes:
        """The code the test call spoke."""
        view = await self._session(req.caller)
        actor = _actor(req.caller, view["contact"]["name"])
        return await self._confirm(
            str(req.caller.contact_id), "cli", req.number, req.code, actor, req.meta.command_id, req.number
        )

    async def confirm_link(self, req: ConfirmLink) -> bytes:
        """The link in the e-mail was followed (no portal session: the id and code are the proof)."""
        async with self.pool.acquire() as conn, conn.transaction():
            record = await store.by_id_for_update(conn, str(req.verification_id))
            if record is None or record.channel != "email":
                raise ServiceError(ErrorCode.CODE_NOT_REQUESTED, "this link is not valid; request a new code")
            actor = Actor(kind="portal", id=record.contact_id, name="e-mail link")
            link = record.id
            first = await self._first_confirmation(
                conn, record.contact_id, req.meta.command_id, req.code, lambda r: r.id == link
            )
            if first is not None:
                return _verified(first)
            return await self._try(conn, record, record.target, req.code, actor, req.meta.command_id)

    async def _issue(
        self, caller: PortalCaller, name: str, channel: str, target: str, *, send: Send,
        command_id: str | None = None, guard: Guard | None = None,
    ) -> bytes:
        now = self.clock()
        record = codes.CodeRecord(
            id=str(new_id()),
            customer_id=str(caller.customer_id),
            contact_id=str(caller.contact_id),
            channel=channel,
            target=target,
            code_hash="",
            attempts=0,
            events=1,
            status="open",
            expires_at=now + timedelta(seconds=self.limits.code_ttl_s),
            request_id=command_id,
        )
        code = codes.new_code()
        record = codes.CodeRecord(
            **{**record.__dict__, "code_hash": codes.code_hash(self.pepper, record.id, code)}
        )
        sent = _event(
            record,
            VerificationCodeSent,
            1,
            _actor(caller, name),
            await self._key(record.contact_id),
            target=target,
            expires_at=record.expires_at.isoformat(),
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_contact(conn, record.contact_id)
            if command_id:
                used = await store.by_command_id(conn, record.contact_id, command_id)
                if first := codes.first_request(used, command_id, channel, target):
                    log.info("verification_request_replayed", verification_id=first.id)
                    return self._code_sent(first)  # retried after a lost reply: no second code
            since = now - timedelta(seconds=self.limits.request_window_s)
            recent = await store.recent_requests(conn, record.contact_id, since)
            limit = self.limits.requests_per_window
            if (err := codes.rate_limited(recent, limit, self.limits.request_window_s)) is not None:
                raise err
            if guard is not None:
                await guard(conn, record)
            messages = [sent, *await send(record, code, name)]
            await store.insert_code(conn, record, now, messages)
        log.info(
            "verification_code_issued",
            channel=channel,
            verification_id=record.id,
            contact_id=record.contact_id,
        )
        return self._code_sent(record)

    def _code_sent(self, record: codes.CodeRecord) -> bytes:
        return dumps(
            {
                "verification_id": record.id,
                "channel": record.channel,
                "target": record.target,
                "expires_at": record.expires_at.isoformat(),
                "attempts_left": max(0, self.limits.max_attempts - record.attempts),
            }
        )

    async def _notify(self, record: codes.CodeRecord, code: str, name: str) -> list[OutboxMessage]:
        email = record.channel == "email"
        message = SystemMessage(
            notification_id=f"verification:{record.id}",
            channel="email" if email else "sms",
            template="email_code" if email else "mobile_code",
            to=record.target,
            customer_id=record.customer_id,
            contact_id=record.contact_id,
            variables={
                "contact_name": name,
                "expires_minutes": str(int(self.limits.code_ttl_s // 60)),
                **({"link_base": f"{self.link_base}?verification_id={record.id}&code="} if email else {}),
            },
            sealed_secret=self.sealer.seal(code),
        )
        return [
            OutboxMessage(
                message.subject,
                message.notification_id,
                message.model_dump_json().encode(),
                {"Patchbay-Customer-Id": record.customer_id},
            )
        ]

    async def _test_call(self, record: codes.CodeRecord, code: str, name: str) -> list[OutboxMessage]:
        body = TestCallRequest(customer_id=record.customer_id, number=record.target, code=code)
        try:
            await self.nc.request(
                VerificationStreams.TEST_CALL,
                body.model_dump_json().encode(),
                timeout=self.limits.request_timeout_s,
            )
        except (nats.errors.Error, TimeoutError):
            raise ServiceError(
                ErrorCode.UNAVAILABLE, "the switch did not take the test call; try again"
            ) from None
        return []

    async def _confirm(
        self, contact_id: str, channel: str, target: str, code: str, actor: Actor, command_id: str | None,
        number: str | None = None,
    ) -> bytes:
        async with self.pool.acquire() as conn, conn.transaction():
            # locked first: a concurrent twin of this confirmation commits before we look for it
            record = await store.latest_for_update(conn, contact_id, channel, number)
            first = await self._first_confirmation(
                conn, contact_id, command_id, code,
                lambda r: r.channel == channel and (number is None or r.target == number),
            )
            if first is not None:
                return _verified(first)
            return await self._try(conn, record, target, code, actor, command_id)

    async def _first_confirmation(
        self, conn: asyncpg.Connection, contact_id: str, command_id: str | None, code: str,
        same: Callable[[codes.CodeRecord], bool],
    ) -> codes.CodeRecord | None:
        """The code this confirmation verified before, when it is retried (its reply was lost)."""
        if not command_id:
            return None
        used = await store.by_command_id(conn, contact_id, command_id)
        first = codes.first_confirmation(
            used, command_id, lambda r: same(r) and codes.matches(self.pepper, r.id, code, r.code_hash)
        )
        if first is not None:
            log.info("verification_confirm_replayed", verification_id=first.id)
        return first

    async def _try(
        self, conn: asyncpg.Connection, record: codes.CodeRecord | None, target: str, code: str, actor: Actor,
        command_id: str | None,
    ) -> bytes:
        record = codes.check_usable(record, self.clock(), self.limits.max_attempts, target)
        if not codes.matches(self.pepper, record.id, code, record.code_hash):
            attempts = record.attempts + 1
            locked = attempts >= self.limits.max_attempts
            rejected = _event(
                record, VerificationCodeRejected, record.events + 1, actor, None, attempts=attempts,
                locked=locked,
            )
            await store.record_wrong(conn, record.id, [rejected])
            log.info("verification_code_rejected", verification_id=record.id, attempts=attempts)
            # the wrong try must count: commit it, then answer the error
            return _deferred_error(codes.wrong_code(attempts, self.limits.max_attempts))
        outcome = _event(record, OUTCOMES[record.channel], record.events + 1, actor,
                         await self._key(record.contact_id), target=record.target)
        await store.mark_verified(conn, record.id, [outcome], command_id)
        log.info("verification_confirmed", channel=record.channel, verification_id=record.id)
        return _verified(record)

    async def _session(self, caller: PortalCaller) -> dict[str, Any]:
        body = {
            "customer_id": str(caller.customer_id), "contact_id": str(caller.contact_id), "ip": caller.ip,
            "issued_at": caller.issued_at.isoformat() if caller.issued_at else None,
        }
        headers = {CORRELATION_HEADER: cid} if (cid := current_correlation_id()) else None
        try:
            msg = await self.nc.request(
                ContactSubjects.PORTAL_SESSION,
                dumps(body),
                timeout=self.limits.request_timeout_s,
                headers=headers,
            )
        except (nats.errors.Error, TimeoutError):
            raise ServiceError(ErrorCode.UNAVAILABLE, "the customer service did not answer") from None
        reply: dict[str, Any] = json.loads(msg.data)
        if "error" in reply:
            error = ErrorReply.model_validate(reply).error
            raise ServiceError(error.code, error.message, error.details)
        return reply


def _actor(caller: PortalCaller, name: str) -> Actor:
    # the contact's name is personal data, and metadata is never encrypted: the id says who
    del name
    return Actor(kind="portal", id=str(caller.contact_id), name="portal contact", ip=caller.ip)


def _verified(record: codes.CodeRecord) -> bytes:
    return dumps({"verification_id": record.id, "channel": record.channel, "target": record.target,
                  "verified": True})


def _deferred_error(err: ServiceError) -> bytes:
    return err.to_reply().model_dump_json().encode()
