"""HTTP-only request and response models (the customer ones come from the NATS contract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, model_validator
from shared.contracts.base import Strict
from shared.contracts.customer import Status
from shared.contracts.fields import Reason

from gateway.auth.roles import Role

TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class StatusChange(Strict):
    """`POST /v1/customers/{id}/status`: `until` is required with `penalty`."""

    status: Status
    reason: Reason | None = None
    until: datetime | None = None


class AuditSettingsUpdate(Strict):
    """`PUT /v1/settings/audit`."""

    require_reason: bool


class TokenCreate(Strict):
    """`POST /v1/tokens`: optionally expiring at a moment or after some days (not both)."""

    name: TokenName
    role: Role
    expires_at: AwareDatetime | None = Field(default=None, description="When the token stops working.")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="Or: days from now.")

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenCreate:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return self

    def expiry(self) -> datetime | None:
        """The moment the token expires (None: never)."""
        if self.expires_in_days is not None:
            return datetime.now(UTC) + timedelta(days=self.expires_in_days)
        return self.expires_at


class TokenInfo(BaseModel):
    """A token as listed: never its secret or hash."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None


class TokenCreated(BaseModel):
    """A new token: the secret is shown in this answer only."""

    id: UUID
    name: str
    role: Role
    token: str
    expires_at: datetime | None = None


class TokenPage(BaseModel):
    """One page of tokens."""

    items: list[TokenInfo]
    next_cursor: str | None
    total: int


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"]
    checks: dict[str, str] = {}
