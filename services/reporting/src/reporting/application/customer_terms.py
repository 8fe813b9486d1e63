"""The customer's tax rate and currency, asked of the customer service over NATS."""

from __future__ import annotations

import json
from decimal import Decimal

import nats.errors
from nats.aio.client import Client as NatsClient
from shared.contracts.customer import Subjects
from shared.errors import ErrorCode, ErrorReply, ServiceError

from reporting.application.invoices import CustomerTerms


def nats_customer_terms(nc: NatsClient, *, timeout_s: float) -> CustomerTerms:
    """A CustomerTerms that asks `customer.query.get`; its error replies pass through."""

    async def terms(customer_id: str) -> tuple[Decimal, str]:
        try:
            msg = await nc.request(
                Subjects.GET, json.dumps({"customer_id": customer_id}).encode(), timeout=timeout_s
            )
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError) as exc:
            raise ServiceError(
                ErrorCode.UNAVAILABLE, f"the customer service did not answer ({type(exc).__name__})"
            ) from None
        card = json.loads(msg.data)
        if "error" in card:
            error = ErrorReply.model_validate(card).error
            raise ServiceError(error.code, error.message, error.details)
        if card.get("deleted"):
            raise ServiceError(ErrorCode.DELETED, f"customer {customer_id} is deleted")
        return Decimal(str(card["tax"])), str(card["currency"])

    return terms
