"""Choreography: verification outcomes (VERIFICATION_EVENTS) become events of the customer aggregate.

The command id is the verification event's id, so a redelivered outcome appends nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import structlog
from nats.aio.msg import Msg
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.customer import CommandMeta
from shared.contracts.events import REGISTRY
from shared.contracts.events.verification import Verified
from shared.contracts.verification import VERIFIED_KINDS, VerificationStreams
from shared.envelope import EventEnvelope
from shared.errors import ErrorCode
from shared.personal_data import KeyProvider, decrypt_events

from customer.application.commands import CustomerCommands
from customer.application.contact_commands import RecordVerificationCmd

log = structlog.get_logger(__name__)

SPEC = ConsumerSpec(
    stream=VerificationStreams.STREAM,
    durable="customer-verification-results",
    filter_subjects=[f"events.verification.*.{event_type}" for event_type in VERIFIED_KINDS],
)
# answers that mean "nothing to apply" rather than "try again"
SETTLED = {ErrorCode.NOT_FOUND, ErrorCode.DELETED}


class Retry(Exception):
    """The customer service could not apply the outcome now; redeliver it."""


class VerificationResults:
    """Applies verification outcomes as commands, concurrently (each customer's in order)."""

    def __init__(self, commands: CustomerCommands, keys: KeyProvider | None = None) -> None:
        self.commands = commands
        self.keys = keys  # the outcome's target is encrypted with its contact's key

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """The consumer's batch handler."""
        await asyncio.gather(*[self.apply(msg) for msg in msgs])

    async def apply(self, msg: Msg) -> None:
        """One outcome; raises Retry when the store is unavailable, Poison when unreadable."""
        try:
            event = EventEnvelope.model_validate_json(msg.data)
            if self.keys is not None:
                [event] = await decrypt_events([event], self.keys)
            outcome = REGISTRY.decode(event)
            if not isinstance(outcome, Verified):
                raise ValueError(f"{event.type} is not an outcome")
            kind = VERIFIED_KINDS[outcome.TYPE]
            meta = CommandMeta(
                command_id=f"verification:{event.event_id}", actor=event.metadata.actor,
                correlation_id=event.metadata.correlation_id,
                reason=f"{kind} verified ({'test call' if kind == 'cli' else 'code'})",
            )
            cmd = RecordVerificationCmd(
                customer_id=outcome.customer_id, meta=meta, contact_id=str(outcome.contact_id),
                kind=kind, value=outcome.target, verification_id=outcome.verification_id,
            )
        except (ValueError, LookupError, TypeError) as exc:
            raise Poison(f"not a verification outcome: {exc}") from exc
        reply = json.loads(await self.commands.handle(cmd))
        error = reply.get("error") if isinstance(reply, dict) else None
        if error is None:
            log.info("verification_applied", kind=kind, customer_id=cmd.customer_id,
                     contact_id=cmd.contact_id)
        elif error["code"] in SETTLED:
            log.info("verification_ignored", kind=kind, customer_id=cmd.customer_id, why=error["code"])
        elif error["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.CONFLICT):
            raise Retry(error["message"])
        else:
            log.warning("verification_refused", kind=kind, customer_id=cmd.customer_id,
                        code=error["code"], message=error["message"])
