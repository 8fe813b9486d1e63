"""Invoices and credit notes as documents (product.md section 13): the reporting service's NATS API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta

InvoiceStatus = Literal["open", "paid", "overdue", "void"]
LineKind = Literal["usage", "late_usage"]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Text = Annotated[str, StringConstraints(max_length=2000)]


class InvoiceSubjects:
    """Request/reply subjects of invoices, credit notes and their settings."""

    GENERATE = "reporting.cmd.generate-invoice"
    LIST = "reporting.query.invoices"
    GET = "reporting.query.invoice"
    VOID = "reporting.cmd.invoice.void"
    CREDIT_NOTE = "reporting.cmd.invoice.credit-note"
    CREDIT_NOTES = "reporting.query.credit-notes"
    DOCUMENT = "reporting.query.invoice.document"
    GET_SETTINGS = "reporting.query.settings.invoices"
    SET_SETTINGS = "reporting.cmd.settings.invoices"


class Seller(BaseModel):
    """The carrier's details printed on a document (from the settings when it was issued)."""

    company_name: str = ""
    company_address: str = ""
    payment_details: str = ""
    footer: str = ""


class Buyer(BaseModel):
    """The customer as the card said when the invoice was issued."""

    name: str = ""
    address: str = ""


class InvoiceSettings(Seller):
    """Numbering, due days and the carrier's details."""

    prefix: str
    next_number: int
    due_days: int
    updated_at: datetime | None = None


class InvoiceSettingsIn(Strict):
    """`PUT /v1/settings/invoices`: fields left out keep their value."""

    prefix: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20,
                                             pattern=r"^[A-Za-z0-9/_.-]*$")] | None = None
    next_number: int | None = Field(default=None, ge=1, le=10**12)
    due_days: int | None = Field(default=None, ge=0, le=365)
    company_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    company_address: Text | None = None
    payment_details: Text | None = None
    footer: Text | None = None

    @field_validator("company_name", "company_address", "payment_details", "footer", mode="before")
    @classmethod
    def _null_text_is_empty(cls, value: object) -> object:
        return "" if value is None else value  # null clears a text (the columns hold no NULL)

    @model_validator(mode="after")
    def _no_null_numbering(self) -> InvoiceSettingsIn:
        for name in ("prefix", "next_number", "due_days"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null: leave it out to keep it")
        return self


class SetInvoiceSettings(Strict):
    """Change the invoice settings; `next_number` may only move up (numbers are never reused)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    settings: InvoiceSettingsIn


class GetInvoiceSettings(Strict):
    """The invoice settings."""


class InvoiceLineOut(BaseModel):
    """One line: a day's usage, or late usage of a day invoiced before."""

    day: date
    kind: LineKind = "usage"
    attempts: int
    connected: int
    billed_duration_s: int
    billed_minutes: Decimal
    charge: Decimal = Field(description="The exact charge of the line, before rounding.")
    amount: Decimal = Field(description="The charge rounded half-even to the currency's minor units.")


class Invoice(BaseModel):
    """A numbered invoice in the customer's currency."""

    id: UUID
    number: int
    document_number: str
    customer_id: str
    currency: str
    minor_units: int
    tax_rate: Decimal
    lines: list[InvoiceLineOut]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    amount_due: Decimal
    status: InvoiceStatus
    issue_date: date
    due_date: date
    period_from: date
    period_to: date
    void_reason: str | None = None
    seller: Seller
    buyer: Buyer = Field(default_factory=Buyer)
    rounding: str
    created_at: datetime


class ListInvoices(Strict):
    """Invoices, newest first, of one customer or all, optionally of some statuses."""

    customer_id: UUID | None = None
    status: list[InvoiceStatus] | None = Field(default=None, max_length=4)
    # invoices whose billed period overlaps [period_from, period_to] (either may be left out)
    period_from: date | None = None
    period_to: date | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=500)


class InvoicePage(BaseModel):
    """One page of invoices."""

    items: list[Invoice]
    next_cursor: str | None
    total: int


class GetInvoice(Strict):
    """One invoice; with `customer_id`, only if it is that customer's (the portal)."""

    invoice_id: UUID
    customer_id: UUID | None = None


class VoidInvoiceIn(Strict):
    """`POST /v1/invoices/{id}/void`."""

    reason: Reason


class VoidInvoice(VoidInvoiceIn):
    """Void an invoice that nothing was paid on; its days stay invoiced."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    invoice_id: UUID


class CreditNoteIn(Strict):
    """`POST /v1/invoices/{id}/credit-notes`."""

    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=4)
    reason: Reason


class IssueCreditNote(CreditNoteIn):
    """A credit note against an invoice: at most what is left of its total after earlier notes."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    invoice_id: UUID


class CreditNote(BaseModel):
    """A numbered credit note (`CN-`), credit on the customer's balance."""

    id: UUID
    number: int
    document_number: str
    invoice_id: UUID
    invoice_number: str
    customer_id: str
    currency: str
    amount: Decimal
    reason: str
    created_at: datetime


class ListCreditNotes(Strict):
    """Credit notes, newest first, of one invoice or customer (or all)."""

    invoice_id: UUID | None = None
    customer_id: UUID | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class CreditNotePage(BaseModel):
    """Credit notes, newest first."""

    items: list[CreditNote]
    total: int


class GetInvoiceDocument(Strict):
    """An invoice as a document: PDF (base64 in `content`) or printable HTML."""

    invoice_id: UUID
    customer_id: UUID | None = None
    format: Literal["pdf", "html"] = "pdf"


class InvoiceDocument(BaseModel):
    """A rendered invoice: media type, file name and content (base64 for PDF, text for HTML)."""

    media_type: str
    filename: str
    content: str
