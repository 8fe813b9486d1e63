"""Self-service sign-up (product.md section 14): its settings and the request, on the customer service."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from shared.contracts.base import Strict
from shared.contracts.contacts import Password
from shared.contracts.customer import CommandMeta
from shared.contracts.fields import CurrencyCode, Name


class SignupSubjects:
    """Request/reply subjects of sign-up."""

    GET_SETTINGS = "customer.query.settings.signup"
    SET_SETTINGS = "customer.cmd.settings.signup"
    SUBMIT = "customer.cmd.signup"


class SignupSettings(Strict):
    """`PUT /v1/settings/signup`: off by default; the currencies a new customer may choose."""

    enabled: bool = False
    currencies: list[CurrencyCode] = Field(default_factory=lambda: ["USD"], min_length=1, max_length=50)


class SignupSettingsOut(SignupSettings):
    """The sign-up settings as answered: with their version (as `GET /v1/settings/signup` sends them)."""

    version: int = 0


class SetSignupSettings(SignupSettings):
    """Change the sign-up settings (admin)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)


class GetSignupSettings(Strict):
    """Read the sign-up settings."""


class SignupRequest(Strict):
    """`POST /portal/v1/signup`: a company and its first contact, who becomes the portal login."""

    company: Name
    contact_name: Name
    email: EmailStr
    password: Password
    currency: CurrencyCode


class SubmitSignup(SignupRequest):
    """A sign-up as the gateway passes it on (with the caller's address)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    ip: Annotated[str, StringConstraints(max_length=64)] | None = None


class SignupOutcome(BaseModel):
    """For the gateway only (never shown to the caller): what was made, if anything."""

    created: bool
    customer_id: UUID | None = None
    contact_id: UUID | None = None
