"""Contacts, the portal and dial permission: the customer service's NATS API for them."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta, Verification
from shared.contracts.fields import Name, Notes, ShortText

PASSWORD_MIN = 12
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
# the keys of every item of a card's `contacts` list (the notifier and reporting rely on them)
CONTACT_KEYS = (
    "id", "name", "email", "mobile", "phone", "contact_type", "public_notes", "private_notes",
    "ip_whitelist", "email_verified", "mobile_verified",
)


def _e164(value: str) -> str:
    number = re.sub(r"[\s\-().]", "", value)
    if not E164_PATTERN.match(number):
        raise ValueError("must be an E.164 number: '+', country code and number, e.g. +14155550123")
    return number


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address or CIDR block (e.g. 203.0.113.0/24)") from None


def _cidrs(values: list[str]) -> list[str]:
    return sorted(set(values), key=lambda c: (ipaddress.ip_network(c).version, c))


def _password(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < PASSWORD_MIN:
        raise ValueError(f"a password needs at least {PASSWORD_MIN} characters")
    return value


E164 = Annotated[str, StringConstraints(max_length=40), AfterValidator(_e164)]
Cidr = Annotated[str, StringConstraints(max_length=64), AfterValidator(_cidr)]
IpWhitelist = Annotated[list[Cidr], Field(max_length=100), AfterValidator(_cidrs)]
ContactType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Password = Annotated[SecretStr, Field(max_length=256), AfterValidator(_password)]


class ContactSubjects:
    """Request/reply subjects for contacts, approved CLIs, the portal and dial permission."""

    ADD = "customer.cmd.contact.add"
    UPDATE = "customer.cmd.contact.update"
    REMOVE = "customer.cmd.contact.remove"
    SET_PASSWORD = "customer.cmd.contact.set-password"
    APPROVE_CLI = "customer.cmd.cli.approve"
    REMOVE_CLI = "customer.cmd.cli.remove"
    PORTAL_LOGIN = "customer.query.portal.login"
    PORTAL_SESSION = "customer.query.portal.session"
    DIAL_PERMISSION = "customer.query.dial-permission"


class ContactCreate(Strict):
    """A new contact; `email` is the portal login, unique across all customers."""

    name: Name
    email: EmailStr
    mobile: E164 | None = None
    phone: ShortText | None = None
    contact_type: ContactType = "general"
    public_notes: Notes = ""
    private_notes: Notes = ""
    ip_whitelist: IpWhitelist = Field(default_factory=list)
    email_verified: bool = False
    mobile_verified: bool = False


class ContactPatch(Strict):
    """Fields to change; only those present change (operators may set the verified flags)."""

    name: Name | None = None
    email: EmailStr | None = None
    mobile: E164 | None = None
    phone: ShortText | None = None
    contact_type: ContactType | None = None
    public_notes: Notes | None = None
    private_notes: Notes | None = None
    ip_whitelist: IpWhitelist | None = None
    email_verified: bool | None = None
    mobile_verified: bool | None = None


CONTACT_NOT_NULL = frozenset(
    {"name", "email", "contact_type", "public_notes", "private_notes", "ip_whitelist",
     "email_verified", "mobile_verified"}
)


class PasswordChoice(Strict):
    """Either a generated password sent to the contact (default) or one typed by the operator."""

    auto_generate_password: bool = True
    password: Password | None = None

    @model_validator(mode="after")
    def _one_way(self) -> PasswordChoice:
        if self.password is not None:
            self.auto_generate_password = False
        elif not self.auto_generate_password:
            raise ValueError("give a `password` (12+ characters) or set auto_generate_password")
        return self


class AddContact(PasswordChoice):
    """Add a contact to a customer."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    expected_version: int | None = None
    contact: ContactCreate


class UpdateContact(Strict):
    """Change fields of a contact; a new e-mail or mobile is unverified again."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    contact_id: UUID
    expected_version: int | None = None
    changes: ContactPatch


class RemoveContact(Strict):
    """Remove a contact (its e-mail becomes free)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    contact_id: UUID
    expected_version: int | None = None


class SetContactPassword(PasswordChoice):
    """Reset a contact's password: generated and sent (default), or typed by the operator."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    contact_id: UUID


class ChangeApprovedCli(Strict):
    """An operator approves a CLI by hand, or removes one."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    number: E164
    expected_version: int | None = None


class PortalLogin(Strict):
    """A contact's e-mail and password, and the caller's address."""

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    ip: str | None = Field(default=None, max_length=64)


class PortalSession(Strict):
    """Check a portal session (contact, customer, caller's address); answer what the portal shows."""

    customer_id: UUID
    contact_id: UUID
    ip: str | None = Field(default=None, max_length=64)
    # when the session began: a password set after it ends the session
    issued_at: datetime | None = None


class PortalContact(BaseModel):
    """A contact as the portal shows it to itself (no private notes)."""

    id: UUID
    name: str
    email: str
    mobile: str | None
    phone: str | None
    contact_type: str
    public_notes: str
    email_verified: bool
    mobile_verified: bool


class PortalCustomer(BaseModel):
    """The contact's customer as the portal shows it (no operator notes)."""

    id: UUID
    name: str
    status: str
    currency: str
    verification: Verification
    approved_clis: list[str]


class PortalView(BaseModel):
    """What `/portal/v1/me` shows: the contact and its customer."""

    contact: PortalContact
    customer: PortalCustomer


class DialPermissionQuery(Strict):
    """May this customer start a call now, optionally with this CLI?"""

    customer_id: UUID
    cli: str | None = Field(default=None, max_length=40)
    # the call's price, so the answer says how long the credit lasts (max_duration_s)
    rate_per_minute: Decimal | None = Field(default=None, ge=0)
    connect_fee: Decimal | None = Field(default=None, ge=0)


DialReason = Literal[
    "not_found", "deleted", "inactive", "pending_approval", "penalty", "email_unverified",
    "mobile_unverified", "cli_not_approved", "insufficient_credit", "daily_spend_limit",
]


class DialCredit(BaseModel):
    """The customer's credit (shared.money), in its currency, as decimal text."""

    balance: str
    available: str
    currency: str


class DialLimits(BaseModel):
    """Limits the switch enforces itself."""

    channels: int
    cps: Decimal
    debit_limit: Decimal


class DialPermission(BaseModel):
    """The answer: allowed or not, every reason, and the limits."""

    allowed: bool
    reasons: list[DialReason]
    limits: DialLimits | None = None
    penalty_until: datetime | None = None
    credit: DialCredit | None = None
    # with rate_per_minute: floor((available - connect_fee) / rate * 60), capped by max_call_duration_s
    max_duration_s: int | None = None


def portal_view(card: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """The portal's view of a card and one of its contacts (public fields only)."""
    return {
        "contact": {k: contact[k] for k in PortalContact.model_fields},
        "customer": {k: card[k] for k in PortalCustomer.model_fields},
    }
