"""What a portal contact does for itself beyond verification (product.md section 14)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field, SecretStr

from shared.contracts.base import Strict
from shared.contracts.contacts import Password
from shared.contracts.customer import CommandMeta


class PortalSubjects:
    """Request/reply subjects the portal asks the customer service."""

    CHANGE_PASSWORD = "customer.cmd.portal.change-password"


class PasswordChange(Strict):
    """`POST /portal/v1/password`: the current password and a new one (12+ characters)."""

    current_password: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    new_password: Password


class ChangeOwnPassword(PasswordChange):
    """A logged-in contact changes its own password; every session begun before ends."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    contact_id: UUID
