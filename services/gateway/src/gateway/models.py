"""HTTP-only request and response models (the customer ones come from the NATS contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, StringConstraints
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
    """`POST /v1/tokens`."""

    name: TokenName
    role: Role


class TokenInfo(BaseModel):
    """A token as listed: never its secret or hash."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


class TokenCreated(BaseModel):
    """A new token: the secret is shown in this answer only."""

    id: UUID
    name: str
    role: Role
    token: str


class TokenPage(BaseModel):
    """One page of tokens."""

    items: list[TokenInfo]
    next_cursor: str | None
    total: int


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"]
    checks: dict[str, str] = {}
