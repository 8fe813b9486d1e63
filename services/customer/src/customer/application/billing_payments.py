"""Payments from billing systems (`billing.payments.<customer_id>`) become ledger commands.

The message's `payment_id` is the payment's reference, so a redelivered or repeated message
records nothing new. A message that can never be recorded (unreadable, another currency,
the same payment_id with another amount, an unknown customer) is dead-lettered with its
reason: kept, not lost, not retried forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError
from shared.consumer import ConsumerSpec, Poison
from shared.contracts.customer import CommandMeta
from shared.contracts.payments import BillingPayment, PaymentIn, PaymentSubjects
from shared.envelope import Actor
from shared.errors import ErrorCode

from customer.application.commands import CustomerCommands
from customer.application.payments import RecordPaymentCmd

log = structlog.get_logger(__name__)

SPEC = ConsumerSpec(
    stream="BILLING_EVENTS",
    durable="customer-billing-payments",
    filter_subjects=[PaymentSubjects.BILLING_PAYMENTS],
)
BILLING = Actor(kind="system", name="billing")


class Retry(Exception):
    """The customer service could not record it now; redeliver."""


class BillingPayments:
    """The consumer's batch handler: each message one RecordPayment command."""

    def __init__(self, commands: CustomerCommands) -> None:
        self.commands = commands

    async def handle(self, msgs: Sequence[Msg]) -> None:
        """Record a batch (each customer's in order: one partition, one batch, gathered by customer)."""
        await asyncio.gather(*[self.apply(msg) for msg in msgs])

    async def apply(self, msg: Msg) -> None:
        """One payment message."""
        try:
            body = BillingPayment.model_validate_json(msg.data)
            payment = PaymentIn(
                kind="payment",
                amount=body.amount,
                currency=body.currency,
                method="other",
                reference=body.payment_id,
                status="completed",
                description="from the billing system",
            )
        except ValidationError as exc:
            raise Poison(f"not a billing payment: {exc.errors(include_url=False)[:3]}") from exc
        cmd = RecordPaymentCmd(
            customer_id=str(body.customer_id),
            meta=CommandMeta(actor=BILLING, reason="billing.payments"),
            payment=payment,
            source="nats",
            received_at=body.received_at,
        )
        reply = orjson.loads(await self.commands.handle(cmd))
        error = reply.get("error")
        if error is None:
            log.info("billing_payment_recorded", customer_id=cmd.customer_id, reference=body.payment_id)
            return
        reused = any(d.get("type") == "reference_reused" for d in error.get("details") or [])
        if error["code"] == ErrorCode.UNAVAILABLE or (error["code"] == ErrorCode.CONFLICT and not reused):
            raise Retry(error["message"])
        log.warning(
            "billing_payment_refused",
            customer_id=cmd.customer_id,
            reference=body.payment_id,
            code=error["code"],
            message=error["message"],
        )
        raise Poison(f"{error['code']}: {error['message']}")
