"""The reporting service's NATS API: subjects, requests and replies (the gateway speaks them as JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta
from shared.contracts.invoices import (  # noqa: F401  (re-exported: the gateway imports them here)
    GetInvoice,
    Invoice,
    InvoiceLineOut,
    InvoicePage,
    ListInvoices,
)

Period = Literal["live", "daily", "weekly", "monthly"]
MAX_INVOICE_DAYS = 366


class ReportingSubjects:
    """Request/reply subjects of the reporting service (as-of is the customer service's)."""

    AUDIT = "reporting.query.audit"
    SUMMARY = "reporting.query.summary"
    GENERATE_INVOICE = "reporting.cmd.generate-invoice"
    INVOICES = "reporting.query.invoices"
    INVOICE = "reporting.query.invoice"
    LAG = "reporting.query.lag"


class AuditQuery(Strict):
    """The audit log of one customer, or of everything (admins): filters and cursor paging."""

    customer_id: UUID | None = None
    since: datetime | None = Field(default=None, description="From this instant (inclusive).")
    until: datetime | None = Field(default=None, description="Up to this instant (exclusive).")
    actor: str | None = Field(default=None, max_length=200, description="Actor name or id.")
    type: list[str] | None = Field(default=None, max_length=50, description="Event types.")
    limit: int = Field(default=50, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=500)


class AuditActor(BaseModel):
    """Who: an operator token, a portal contact, or the system."""

    kind: str
    id: str | None
    name: str


class AuditEntryOut(BaseModel):
    """One entry: when, who, from where, what, and the difference."""

    event_id: UUID
    occurred_at: datetime
    customer_id: str | None
    type: str
    action: str
    category: str
    stream_id: str
    version: int
    actor: AuditActor
    ip: str | None
    reason: str | None
    correlation_id: str | None
    causation_id: str | None
    changes: dict[str, Any]
    data: dict[str, Any] | None


class AuditPage(BaseModel):
    """One page of the audit log, oldest first."""

    items: list[AuditEntryOut]
    next_cursor: str | None
    total: int


class SummaryQuery(Strict):
    """Summary rows of one customer: live, or per UTC day, ISO week or month, with totals."""

    customer_id: UUID
    period: Period = "daily"
    from_day: date | None = Field(default=None, alias="from")
    to_day: date | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> SummaryQuery:
        if self.from_day and self.to_day and self.from_day > self.to_day:
            raise ValueError("`from` must not be after `to`")
        return self


class Figures(BaseModel):
    """The figures of one row (ASR and profit % in percent; money as decimal strings)."""

    attempts: int
    connected: int
    asr: Decimal
    acd_s: Decimal
    duration_s: int
    billed_duration_s: int
    charge: Decimal
    cost: Decimal
    profit: Decimal
    profit_pct: Decimal
    avg_pdd_ms: Decimal


class SummaryRow(Figures):
    """One period's row."""

    period_start: date | datetime


class Summary(BaseModel):
    """Rows of a range and their true totals (sums first, ratios from the sums)."""

    customer_id: UUID
    period: Period
    from_day: date = Field(serialization_alias="from")
    to_day: date = Field(serialization_alias="to")
    rows: list[SummaryRow]
    totals: Figures
    channels_in_use: int | None = None
    as_of: datetime


class InvoiceRequest(Strict):
    """`POST /v1/customers/{id}/invoices`: a date range (`from`, `to`) or chosen `days`."""

    from_day: date | None = Field(default=None, alias="from")
    to_day: date | None = Field(default=None, alias="to")
    days: list[date] | None = Field(default=None, min_length=1, max_length=MAX_INVOICE_DAYS)


class GenerateInvoice(InvoiceRequest):
    """Invoice a date range, or chosen days, of one customer."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    customer_id: UUID

    @model_validator(mode="after")
    def _one_choice(self) -> GenerateInvoice:
        if self.days is None and (self.from_day is None or self.to_day is None):
            raise ValueError("give `from` and `to`, or `days`")
        if self.days is not None and (self.from_day or self.to_day):
            raise ValueError("give either `from` and `to`, or `days`, not both")
        if self.from_day and self.to_day:
            if self.from_day > self.to_day:
                raise ValueError("`from` must not be after `to`")
            if (self.to_day - self.from_day).days >= MAX_INVOICE_DAYS:
                raise ValueError(f"at most {MAX_INVOICE_DAYS} days per invoice")
        return self


class LagQuery(Strict):
    """How far each projection is behind its streams, and the last rebuilds."""


class StreamLag(BaseModel):
    """One projection on one stream."""

    projection: str
    stream: str
    checkpoint: int
    stream_last_seq: int
    behind: int


class RebuildProgress(BaseModel):
    """The last rebuild of a projection."""

    projection: str
    state: str
    done: int
    total: int
    percent: Decimal
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None


class Lag(BaseModel):
    """Lag of every projection, and rebuild progress."""

    streams: list[StreamLag]
    rebuilds: list[RebuildProgress]
