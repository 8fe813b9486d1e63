"""Call starts and records from the switch (stream CALLS, product.md section 10)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Disposition = Literal["answered", "busy", "no_answer", "failed", "cancelled"]


class CallStarted(BaseModel):
    """`calls.started.<customer_id>`: a call began."""

    model_config = ConfigDict(frozen=True)

    call_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    started_at: AwareDatetime
    cli: str | None = None
    destination: str | None = None


class CallRecord(BaseModel):
    """`calls.cdr.<customer_id>`: a call ended; money in the customer's currency."""

    model_config = ConfigDict(frozen=True)

    call_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    ended_at: AwareDatetime
    cli: str | None = None
    destination: str | None = None
    duration_s: int = Field(ge=0)
    billed_duration_s: int = Field(ge=0)
    charge: Decimal
    cost: Decimal
    disposition: Disposition
    sip_code: int | None = None
    pdd_ms: int | None = Field(default=None, ge=0)

    @property
    def connected(self) -> bool:
        """An answered call."""
        return self.disposition == "answered"


class CallCharge(BaseModel):
    """The part of a `calls.cdr.<customer_id>` record the ledger reads (the rest is not parsed)."""

    model_config = ConfigDict(frozen=True)

    call_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    started_at: AwareDatetime
    charge: Decimal
