"""Personal data and erasure (product.md section 15): the erase commands and the data-key query."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta


class PrivacySubjects:
    """Request/reply subjects of the customer service about personal data."""

    ERASE_CUSTOMER = "customer.cmd.erase"
    ERASE_CONTACT = "customer.cmd.contact.erase"
    # the one path to plaintext outside the customer service (NATS permission: only the services
    # that read personal data: reporting, notifier, verification; see docs/privacy.md)
    DATA_KEYS = "customer.query.data-keys"


class EraseCustomer(Strict):
    """Erase a deleted customer's personal data (its card's and every contact's)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID


class EraseContact(Strict):
    """Erase a removed contact's personal data."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    contact_id: UUID


class DataKeysQuery(Strict):
    """Keys by id (to read), or by subject (to write: made when missing, never for an erased one)."""

    key_ids: list[str] = Field(default_factory=list, max_length=1000)
    subjects: list[str] = Field(default_factory=list, max_length=1000)


class DataKeyItem(BaseModel):
    """One key: `key` is base64, None once the subject was erased (the key is destroyed)."""

    key_id: str
    subject: str
    key: str | None


class DataKeys(BaseModel):
    """The keys asked for that exist (an unknown id is simply absent: read as erased)."""

    keys: list[DataKeyItem]
