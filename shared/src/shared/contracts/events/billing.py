"""Billing events written by reporting, on BILLING_EVENTS (`events.billing.<customer_id>.<Type>`).

Payments arrive from the billing system as plain messages on `billing.payments.<customer_id>`
(not event envelopes); they are not modelled here.
"""

from __future__ import annotations

from typing_extensions import TypedDict

from shared.contracts.events.base import Event, register

BILLING_CATEGORY = "billing"


class InvoiceLineData(TypedDict):
    """One invoiced day (money as decimal text, the day as ISO date)."""

    day: str
    attempts: int
    connected: int
    billed_duration_s: int
    amount: str


@register("InvoiceGenerated")
class InvoiceGenerated(Event):
    """An invoice was issued: the whole invoice, as the API answers it."""

    id: str
    number: int
    customer_id: str
    currency: str
    tax_rate: str
    lines: list[InvoiceLineData]
    subtotal: str
    tax: str
    total: str
    period_from: str
    period_to: str
    created_at: str
