"""The customer service's NATS API: subjects, commands, queries and replies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field

from shared.contracts.base import Strict
from shared.contracts.fields import (
    Count,
    CountryCode,
    CurrencyCode,
    Money,
    Name,
    NonNegativeMoney,
    Notes,
    Percent,
    Reason,
    ShortText,
    Tags,
    TomlText,
    WebUrl,
)
from shared.envelope import Actor

Status = Literal["active", "inactive", "pending_approval", "penalty"]
STATUSES: tuple[str, ...] = ("active", "inactive", "pending_approval", "penalty")


class Subjects:
    """Request/reply subjects of the customer service."""

    CREATE = "customer.cmd.create"
    UPDATE = "customer.cmd.update"
    SET_STATUS = "customer.cmd.set-status"
    DELETE = "customer.cmd.delete"
    GET = "customer.query.get"
    LIST = "customer.query.list"
    GET_AUDIT_SETTINGS = "customer.query.settings.audit"
    AS_OF = "customer.query.as-of"
    SET_AUDIT_SETTINGS = "customer.cmd.settings.audit"


class Address(Strict):
    """A structured postal address."""

    line1: ShortText | None = None
    line2: ShortText | None = None
    city: ShortText | None = None
    region: ShortText | None = None
    postcode: ShortText | None = None
    country: CountryCode | None = None


class Verification(Strict):
    """Which verifications a customer's contacts must pass before it may dial."""

    email_required: bool = False
    mobile_required: bool = False
    approved_clis_only: bool = False


# invoices made by themselves for each closed period (reporting's billing clock; product.md 13)
InvoiceSchedule = Literal["none", "weekly", "monthly"]


class CustomerCreate(Strict):
    """Fields of a new customer card."""

    name: Name
    paypal_email: EmailStr | None = None
    website: WebUrl | None = None
    status: Status = "active"
    penalty_until: datetime | None = None
    debit_limit: Money = Decimal(0)
    minimum_payment: NonNegativeMoney = Decimal(0)
    daily_spend_limit: NonNegativeMoney = Decimal(0)
    invoice_schedule: InvoiceSchedule = "none"
    tax: Percent = Decimal(0)
    currency: CurrencyCode = Field(
        default="USD", description="ISO 4217; fixed for ever once created. Omitted: USD (ADR 0017)."
    )
    portal_access: bool = True
    channels: Count = 0
    cps: NonNegativeMoney = Decimal(0)
    address: Address = Field(default_factory=Address)
    tags: Tags = Field(default_factory=list)
    config_toml: TomlText = ""
    verification: Verification = Field(default_factory=Verification)
    notes: Notes = ""


class CustomerPatch(Strict):
    """Fields to change; only the fields present are changed (status has its own command)."""

    name: Name | None = None
    paypal_email: EmailStr | None = None
    website: WebUrl | None = None
    debit_limit: Money | None = None
    minimum_payment: NonNegativeMoney | None = None
    daily_spend_limit: NonNegativeMoney | None = None
    invoice_schedule: InvoiceSchedule | None = None
    tax: Percent | None = None
    currency: CurrencyCode | None = None
    portal_access: bool | None = None
    channels: Count | None = None
    cps: NonNegativeMoney | None = None
    address: Address | None = None
    tags: Tags | None = None
    config_toml: TomlText | None = None
    verification: Verification | None = None
    notes: Notes | None = None


NOT_NULL_FIELDS = frozenset(
    {"name", "debit_limit", "minimum_payment", "daily_spend_limit", "invoice_schedule", "tax", "currency",
     "portal_access", "channels", "cps", "address", "tags", "config_toml", "verification", "notes"}
)


class CommandMeta(Strict):
    """Who asks, why, and the idempotency key."""

    command_id: str | None = Field(default=None, max_length=200)
    actor: Actor = Field(default_factory=Actor)
    reason: Reason | None = None
    correlation_id: str | None = Field(default=None, max_length=200)


class CreateCustomer(Strict):
    """Create a customer card."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer: CustomerCreate


class UpdateCustomer(Strict):
    """Change some fields of a card; `expected_version` makes a mismatch a conflict."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    expected_version: int | None = None
    changes: CustomerPatch


class SetStatus(Strict):
    """Change the status; `until` is required with `penalty`."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    expected_version: int | None = None
    status: Status
    until: datetime | None = None


class DeleteCustomer(Strict):
    """Delete a customer (its history stays)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    expected_version: int | None = None


class GetCustomer(Strict):
    """Read one card."""

    customer_id: UUID


SORTABLE = (
    "name", "status", "currency", "country", "created_at", "updated_at", "channels", "cps",
    "debit_limit", "tax", "minimum_payment", "website", "paypal_email", "portal_access",
)


class BoardFilter(Strict):
    """The board's filters (as `GET /v1/customers` takes them), without sort and paging."""

    q: str | None = Field(default=None, max_length=200)
    status: list[Status] | None = None
    tag: list[str] | None = None
    currency: list[CurrencyCode] | None = None
    country: list[CountryCode] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def page(self, cursor: str | None, limit: int) -> ListCustomers:
        """The board query of one page of matches (sorted by creation, a stable order)."""
        return ListCustomers(**self.model_dump(), sort="created_at", limit=limit, cursor=cursor)


class ListCustomers(BoardFilter):
    """The board: search, filters, sort (`-` prefix = descending), cursor paging."""

    sort: str = "name"
    limit: int = Field(default=50, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=2000)


class CustomerCard(BaseModel):
    """The whole customer card as the API shows it."""

    id: UUID
    name: str
    paypal_email: str | None
    website: str | None
    status: Status
    penalty_until: datetime | None
    debit_limit: Decimal
    minimum_payment: Decimal
    daily_spend_limit: Decimal = Decimal(0)
    invoice_schedule: InvoiceSchedule = "none"
    tax: Decimal
    currency: str
    portal_access: bool
    channels: int
    cps: Decimal
    address: Address
    tags: list[str]
    config_toml: str
    config: dict[str, Any]
    verification: Verification
    approved_clis: list[str] = Field(default_factory=list)
    notes: str
    number_blocks: list[dict[str, Any]] = Field(default_factory=list)
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    deleted: bool = False
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerPage(BaseModel):
    """One page of the board."""

    items: list[CustomerCard]
    next_cursor: str | None
    total: int
    status_counts: dict[Status, int] = Field(
        default_factory=dict,
        description="Customers per status matching every filter but `status` (the board header's counts);"
                    " `total` is their sum over the statuses asked for.")


class AuditSettings(BaseModel):
    """Audit settings: whether every change must carry a reason."""

    require_reason: bool = False
    version: int = 0


class GetAuditSettings(Strict):
    """Read the audit settings."""


class SetAuditSettings(Strict):
    """Change the audit settings."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    require_reason: bool


class AsOfQuery(Strict):
    """The card of one customer as it was at an instant."""

    customer_id: UUID
    at: datetime


class AsOfCard(BaseModel):
    """The card folded from the customer's events up to `as_of`."""

    as_of: datetime
    card: dict[str, Any]
