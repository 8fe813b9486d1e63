"""Payments on the customer's ledger: the rules, pure (product.md section 11).

A payment, refund or adjustment is recorded once per `reference` on a customer: the same
reference with the same values is the same payment (nothing new happens, the payment is the
answer); with other values it is a conflict. Only `pending -> completed | cancelled` moves a
status. A self-service (PayPal) payment below the card's `minimum_payment` is still recorded
(the money was taken) and flagged `below_minimum`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.contracts.payments import IDEMPOTENT_FIELDS, PaymentIn
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.ids import new_id
from shared.money import ZERO, LedgerTotals

from customer.domain import events as ev
from customer.domain.state import CustomerState

NEXT_STATUS = {"pending": frozenset({"completed", "cancelled"})}


def find_by_reference(state: CustomerState, reference: str) -> dict[str, Any] | None:
    """The payment recorded under this reference, if any."""
    return next((p for p in state.payments if p["reference"] == reference), None)


def find(state: CustomerState, payment_id: str) -> dict[str, Any] | None:
    """The payment with this id, if any."""
    return next((p for p in state.payments if p["id"] == payment_id), None)


def decide_record(
    state: CustomerState,
    payment: PaymentIn,
    *,
    source: str,
    received_at: datetime,
    payer_email: str | None = None,
    self_service: bool = False,
) -> list[ev.Event]:
    """A new payment, or nothing when its reference is already recorded with the same values."""
    known = find_by_reference(state, payment.reference)
    if known is not None:
        if payment.same_values(known):
            return []
        differ = [k for k in IDEMPOTENT_FIELDS if payment.model_dump(mode="json")[k] != known.get(k)]
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"reference {payment.reference!r} is already recorded with other values"
            f" ({', '.join(differ)}); a new payment needs a new reference",
            [ErrorDetail(field="reference", message="already used", type="reference_reused")],
        )
    currency = state.fields["currency"]
    if payment.currency != currency:
        raise ServiceError(
            ErrorCode.VALIDATION,
            f"the customer's ledger is in {currency}; a payment in {payment.currency} cannot be"
            " recorded on it (convert it first)",
            [ErrorDetail(field="currency", message=f"must be {currency}", type="currency_mismatch")],
        )
    minimum = Decimal(str(state.fields.get("minimum_payment") or 0))
    below = self_service and payment.kind == "payment" and payment.amount < minimum
    return [ev.PaymentRecorded(
        payment_id=str(new_id()), **payment.model_dump(mode="json"), source=source, below_minimum=below,
        payer_email=payer_email, received_at=received_at.isoformat(),
    )]


def decide_status(state: CustomerState, payment_id: str, status: str) -> list[ev.Event]:
    """pending -> completed or cancelled; the same status again changes nothing."""
    payment = find(state, payment_id)
    if payment is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"customer {state.id} has no payment {payment_id}")
    current = payment["status"]
    if current == status:
        return []
    if status not in NEXT_STATUS.get(current, ()):
        raise ServiceError(
            ErrorCode.INVALID_TRANSITION,
            f"a {current} payment cannot become {status}: only pending -> completed or cancelled",
            [ErrorDetail(field="status", message=f"{current} is final")],
        )
    return [ev.PaymentStatusChanged(payment_id=payment_id, reference=payment["reference"], old=current,
                                    new=status)]


def evolve_payments(
    state: CustomerState, event: ev.PaymentRecorded | ev.PaymentStatusChanged, at: datetime
) -> CustomerState:
    """Apply a payment event to the customer's payments."""
    if isinstance(event, ev.PaymentRecorded):
        row = event.model_dump(mode="json", exclude={"payment_id", "notify_contacts"})
        row |= {"id": event.payment_id, "recorded_at": at.isoformat(), "updated_at": at.isoformat()}
        return replace(state, payments=(*state.payments, row))
    payments = tuple(
        {**p, "status": event.new, "updated_at": at.isoformat()} if p["id"] == event.payment_id else p
        for p in state.payments
    )
    return replace(state, payments=payments)


def payment_totals(payments: tuple[dict[str, Any], ...]) -> LedgerTotals:
    """The completed payments, refunds and adjustments of a customer (charges are not here)."""
    sums = {"payment": ZERO, "refund": ZERO, "adjustment": ZERO}
    for p in payments:
        if p["status"] == "completed":
            sums[p["kind"]] += Decimal(str(p["amount"]))
    return LedgerTotals(payments=sums["payment"], refunds=sums["refund"], adjustments=sums["adjustment"])


def public(customer_id: str, payment: dict[str, Any]) -> dict[str, Any]:
    """A payment as the API shows it."""
    return {"customer_id": customer_id, **payment}
