"""Payments, balance and PayPal IPN: the customer service's NATS API for money (product.md 11)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, EmailStr, Field, StringConstraints, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta
from shared.contracts.fields import CurrencyCode, Money, NonNegativeMoney, Notes, ShortText

Kind = Literal["payment", "refund", "adjustment"]
Method = Literal["manual", "bank_transfer", "paypal", "card", "other"]
PaymentStatus = Literal["completed", "pending", "cancelled"]
Source = Literal["http", "nats", "paypal"]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DEFAULT_VERIFY_URL = "https://ipnpb.paypal.com/cgi-bin/webscr"


class PaymentSubjects:
    """Request/reply subjects of payments, balance and PayPal."""

    RECORD = "customer.cmd.payment.record"
    SET_STATUS = "customer.cmd.payment.set-status"
    LIST = "customer.query.payments"
    BALANCE = "customer.query.balance"
    GET_PAYPAL = "customer.query.settings.paypal"
    SET_PAYPAL = "customer.cmd.settings.paypal"
    IPN = "customer.cmd.paypal.ipn"
    IPN_LOG = "customer.query.paypal.ipn-log"
    # from billing systems, on stream BILLING_EVENTS (product.md section 10)
    BILLING_PAYMENTS = "billing.payments.*"


class PaymentIn(Strict):
    """A payment, refund or adjustment as billing staff (or a billing system) record it."""

    kind: Kind = "payment"
    amount: Money
    currency: CurrencyCode
    method: Method = "manual"
    reference: Reference
    status: PaymentStatus = "completed"
    fee: NonNegativeMoney | None = None
    description: ShortText | None = None
    private_note: Notes | None = None
    notify_contacts: bool = False

    @model_validator(mode="after")
    def _amount_rules(self) -> PaymentIn:
        if self.kind == "adjustment":
            if self.amount == 0:
                raise ValueError("an adjustment's amount may not be 0")
            if not self.description:
                raise ValueError("an adjustment needs a description (why the balance moves)")
        elif self.amount <= 0:
            raise ValueError(f"a {self.kind}'s amount must be above 0")
        return self

    def same_values(self, recorded: dict[str, object]) -> bool:
        """Does this request carry what the payment recorded under its reference was made of?"""
        mine = self.model_dump(mode="json", include=set(IDEMPOTENT_FIELDS))
        return all(mine[k] == recorded.get(k) for k in IDEMPOTENT_FIELDS)


# what must match for a repeated reference to be the same payment (not notes, not notify)
IDEMPOTENT_FIELDS = ("kind", "amount", "currency", "method", "fee", "description")


class RecordPayment(Strict):
    """Record a payment on a customer's ledger; idempotent by `payment.reference`."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    payment: PaymentIn
    source: Source = "http"
    received_at: AwareDatetime | None = None
    # PayPal only: who paid (personal data) and whether the self-service minimum applies
    payer_email: EmailStr | None = None
    self_service: bool = False


class SetPaymentStatus(Strict):
    """pending -> completed or cancelled, nothing else."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    payment_id: UUID
    status: Literal["completed", "cancelled"]


class PaymentStatusPatch(Strict):
    """The HTTP body of a status change."""

    status: Literal["completed", "cancelled"]


class Payment(BaseModel):
    """A payment as stored and shown."""

    id: UUID
    customer_id: UUID
    kind: Kind
    amount: Decimal
    currency: str
    method: Method
    reference: str
    status: PaymentStatus
    fee: Decimal | None = None
    description: str | None = None
    private_note: str | None = None
    source: Source = "http"
    below_minimum: bool = False
    payer_email: str | None = None
    received_at: datetime
    recorded_at: datetime
    updated_at: datetime


class ListPayments(Strict):
    """Payments newest first: one customer's, or every customer's; narrowed by method, status, time."""

    customer_id: UUID | None = None
    method: Method | None = None
    status: PaymentStatus | None = None
    kind: Kind | None = None
    since: datetime | None = None  # recorded at or after
    until: datetime | None = None  # recorded before
    limit: int = Field(default=50, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=200)


class PaymentPage(BaseModel):
    """`{items, next_cursor, total}` like every list."""

    items: list[Payment]
    next_cursor: str | None = None
    total: int


class BalanceQuery(Strict):
    """A customer's balance now."""

    customer_id: UUID


class Balance(BaseModel):
    """Balance and available credit (shared.money), with what they are made of; money as text."""

    customer_id: UUID
    currency: str
    balance: str
    available: str
    debit_limit: str
    charges: str
    payments: str
    refunds: str
    adjustments: str
    credit_notes: str
    today_charges: str
    daily_spend_limit: str
    as_of: datetime


class PaypalSettings(Strict):
    """Where PayPal's IPNs are verified, and whose payments are accepted."""

    enabled: bool = False
    receiver_email: EmailStr | None = None
    verify_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] = DEFAULT_VERIFY_URL

    @model_validator(mode="after")
    def _receiver_when_enabled(self) -> PaypalSettings:
        if self.enabled and not self.receiver_email:
            raise ValueError("receiver_email is needed to enable PayPal (IPNs for others are refused)")
        return self


class GetPaypalSettings(Strict):
    """Read the PayPal settings."""


class SetPaypalSettings(PaypalSettings):
    """Set the PayPal settings (admin)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)


class PaypalSettingsReply(PaypalSettings):
    """The settings and their version."""

    version: int = 0


class SubmitIpn(Strict):
    """An IPN as the gateway received it: the raw body (base64), kept before anything is checked."""

    body_b64: str = Field(max_length=200_000)
    received_at: AwareDatetime
    remote_addr: str | None = Field(default=None, max_length=100)


class IpnAccepted(BaseModel):
    """The IPN is stored; it will be verified and applied in the background."""

    ipn_id: UUID


class IpnLogQuery(Strict):
    """The payment log of IPNs, newest first."""

    limit: int = Field(default=50, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=200)
    customer_id: UUID | None = None
    txn_id: str | None = Field(default=None, max_length=200)


class IpnLogEntry(BaseModel):
    """One IPN and what became of it."""

    id: UUID
    received_at: datetime
    txn_id: str | None = None
    payment_status: str | None = None
    amount: str | None = None
    currency: str | None = None
    receiver_email: str | None = None
    payer_email: str | None = None
    customer_id: UUID | None = None
    payment_id: UUID | None = None
    verification: str | None = None  # VERIFIED, INVALID, or null until PayPal answered
    outcome: str  # pending, recorded, below_minimum, duplicate, or the reason it was not
    reason: str | None = None
    attempts: int = 0
    updated_at: datetime


class IpnLogPage(BaseModel):
    """`{items, next_cursor, total}`."""

    items: list[IpnLogEntry]
    next_cursor: str | None = None
    total: int


class BillingPayment(BaseModel):
    """`billing.payments.<customer_id>` from a billing system (product.md section 10)."""

    payment_id: str = Field(min_length=1, max_length=200)
    customer_id: UUID
    amount: Money
    currency: CurrencyCode
    received_at: AwareDatetime
