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


class IssuedLineData(TypedDict):
    """One line of an issued invoice: a day's usage or late usage (money and minutes as text)."""

    day: str
    kind: str
    attempts: int
    connected: int
    billed_duration_s: int
    billed_minutes: str
    charge: str
    amount: str


class PartyData(TypedDict, total=False):
    """The seller's or buyer's details printed on a document."""

    company_name: str
    company_address: str
    payment_details: str
    footer: str
    name: str
    address: str


@register("InvoiceIssued")
class InvoiceIssued(Event):
    """A numbered invoice was issued (replaces InvoiceGenerated): the whole document as the API shows it."""

    id: str
    number: int
    document_number: str
    customer_id: str
    currency: str
    minor_units: int
    tax_rate: str
    lines: list[IssuedLineData]
    subtotal: str
    tax: str
    total: str
    amount_paid: str
    amount_credited: str
    amount_due: str
    status: str
    issue_date: str
    due_date: str
    period_from: str
    period_to: str
    void_reason: str | None = None
    seller: PartyData
    buyer: PartyData
    rounding: str
    created_at: str


@register("InvoicePaid")
class InvoicePaid(Event):
    """Nothing is left to pay on an invoice (payments allocated and credit notes)."""

    invoice_id: str
    customer_id: str
    document_number: str
    currency: str
    total: str
    amount_paid: str
    amount_credited: str


@register("InvoiceOverdue")
class InvoiceOverdue(Event):
    """An open invoice passed its due date unpaid (an alert area)."""

    invoice_id: str
    customer_id: str
    document_number: str
    due_date: str
    amount_due: str
    currency: str


@register("InvoiceVoided")
class InvoiceVoided(Event):
    """An invoice was voided by billing staff, with a reason; its days stay invoiced."""

    invoice_id: str
    customer_id: str
    document_number: str
    reason: str
    total: str
    currency: str


@register("CreditNoteIssued")
class CreditNoteIssued(Event):
    """A numbered credit note (CN-) against an invoice: credit on the customer's ledger."""

    id: str
    number: int
    document_number: str
    invoice_id: str
    invoice_number: str
    customer_id: str
    currency: str
    amount: str
    reason: str
    created_at: str


class SettingChange(TypedDict):
    """One changed setting."""

    old: object
    new: object


@register("InvoiceSettingsChanged")
class InvoiceSettingsChanged(Event):
    """The invoice settings changed (numbering, due days, the carrier's details)."""

    changes: dict[str, SettingChange]


@register("PaymentAllocated")
class PaymentAllocated(Event):
    """A completed payment (or part of it) was allocated to an open invoice, oldest first."""

    payment_id: str
    invoice_id: str
    customer_id: str
    document_number: str
    currency: str
    amount: str
    amount_paid: str
