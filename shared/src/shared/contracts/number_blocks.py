"""Number range settings and internal number blocks: the customer service's NATS API for them."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta, CustomerCard
from shared.contracts.fields import InternalNumber


class NumberBlockSubjects:
    """Request/reply subjects of number ranges and blocks."""

    GET_RANGE = "customer.query.settings.number-range"
    SET_RANGE = "customer.cmd.settings.number-range"
    ASSIGN = "customer.cmd.number-block.assign"
    RELEASE = "customer.cmd.number-block.release"
    OWNER = "customer.query.number-owner"


class NumberRange(Strict):
    """Blocks of `block_size` numbers from `start`; with `end`, the last number any block may hold."""

    start: InternalNumber
    block_size: InternalNumber = Field(gt=0)
    end: InternalNumber | None = None

    @model_validator(mode="after")
    def _room_for_one_block(self) -> NumberRange:
        if self.end is not None and self.end < self.start + self.block_size - 1:
            raise ValueError("`end` leaves no room for one block (end >= start + block_size - 1)")
        return self


class NumberRangeSettings(BaseModel):
    """The range parameters (all null until set) and the settings version."""

    start: int | None = None
    block_size: int | None = None
    end: int | None = None
    version: int = 0


class GetNumberRange(Strict):
    """Read the number range parameters."""


class SetNumberRange(NumberRange):
    """Set the number range parameters (start and block_size are fixed while blocks are assigned)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)


class AssignNumberBlock(Strict):
    """Give a customer the lowest free block of the range."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID


class ReleaseNumberBlock(Strict):
    """Take a block back from a customer; it is free again."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID
    block_id: UUID


class NumberBlock(BaseModel):
    """An assigned block: its id and its first and last number (inclusive)."""

    id: UUID
    start: int
    end: int


class AssignedBlock(BaseModel):
    """The block just assigned and the customer's card with it."""

    block: NumberBlock
    customer: CustomerCard


class NumberOwnerQuery(Strict):
    """Which customer owns an internal number?"""

    number: InternalNumber


class NumberOwner(BaseModel):
    """The owner of a number (nulls when no block holds it)."""

    number: int
    customer_id: UUID | None = None
    block: NumberBlock | None = None
