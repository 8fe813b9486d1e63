"""The customer's tax rate and currency, asked of the customer service over NATS."""

from __future__ import annotations

import json
from decimal import Decimal

import nats.errors
from nats.aio.client import Client as NatsClient
from shared.contracts.customer import Subjects
from shared.errors import ErrorCode, ErrorReply, ServiceError

from reporting.application.invoices import CustomerTerms, Terms


def nats_customer_terms(nc: NatsClient, *, timeout_s: float) -> CustomerTerms:
    """A CustomerTerms that asks `customer.query.get`; its error replies pass through."""

    async def terms(customer_id: str) -> Terms:
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
        address = card.get("address") or {}
        place = " ".join(str(address[k]) for k in ("postcode", "city") if address.get(k))
        lines = [address.get("line1"), address.get("line2"), place, address.get("region"),
                 address.get("country")]
        return Terms(Decimal(str(card["tax"])), str(card["currency"]), str(card.get("name") or ""),
                     "\n".join(str(x) for x in lines if x))

    return terms
