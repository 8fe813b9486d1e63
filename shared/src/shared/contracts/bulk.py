"""Bulk upload, bulk edit and bulk delete: the customer service's NATS API for them.

An upload travels in chunks (a NATS message is at most 1 MB): `begin` names the upload,
`stage` validates and stores rows under it (any replica may take any chunk), `commit`
checks names across the whole file and against live customers and creates the customers
in one transaction, and `results` pages through each row's outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import BoardFilter, CommandMeta, Status
from shared.contracts.fields import (
    Count,
    CountryCode,
    Money,
    NonNegativeMoney,
    Percent,
    Tag,
)
from shared.errors import ErrorBody, ErrorDetail, FieldError

BulkMode = Literal["all_or_nothing", "best_effort"]
UploadStateName = Literal["staging", "committed", "rejected"]
MAX_UPLOAD_ROWS = 100_000
MAX_STAGE_ROWS = 2_000
MAX_RESULT_PAGE = 2_000
MAX_BULK_IDS = 2_000
MAX_FILTER_PAGE = 500


class BulkSubjects:
    """Request/reply subjects of bulk work."""

    BEGIN = "customer.cmd.bulk.begin"
    STAGE = "customer.cmd.bulk.stage"
    COMMIT = "customer.cmd.bulk.commit"
    RESULTS = "customer.query.bulk.results"
    UPDATE = "customer.cmd.bulk.update"
    DELETE = "customer.cmd.bulk.delete"


class BeginUpload(Strict):
    """Start (or look up) an upload; the same id again answers the upload's state."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    upload_id: UUID
    mode: BulkMode = "all_or_nothing"
    # a hash of the request (mode, content type, body): the same upload id with another
    # request, once the first was committed, is refused (an Idempotency-Key reused)
    fingerprint: str | None = Field(default=None, max_length=128)


class UploadState(BaseModel):
    """Where an upload stands; after commit, how many rows were created and how many failed."""

    upload_id: UUID
    mode: BulkMode
    state: UploadStateName
    total: int = 0
    created: int = 0
    failed: int = 0
    correlation_id: str | None = None


class StagedRow(Strict):
    """One row as the client read it: its number, its fields, and problems found while reading."""

    row: int = Field(ge=1, description="1-based record number (the CSV header is not counted)")
    line: int | None = Field(default=None, description="CSV line where the record starts")
    data: dict[str, Any] = Field(default_factory=dict)
    errors: list[ErrorDetail] = Field(default_factory=list)


class StageRows(Strict):
    """A chunk of rows of an upload (re-sending a row replaces it)."""

    upload_id: UUID
    rows: list[StagedRow] = Field(max_length=MAX_STAGE_ROWS)


class StageReply(BaseModel):
    """How many rows of the chunk were stored, and how many of them are invalid."""

    upload_id: UUID
    staged: int
    invalid: int


class CommitUpload(Strict):
    """Check names across the file and against live customers, then create (by the mode)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    upload_id: UUID


class GetUploadResults(Strict):
    """One page of row results, in row order, after `after_row`."""

    upload_id: UUID
    after_row: int = 0
    limit: int = Field(default=1000, ge=1, le=MAX_RESULT_PAGE)
    only_errors: bool = False


class RowResult(BaseModel):
    """One row's outcome: the created id, or its errors by column."""

    row: int
    line: int | None = None
    status: Literal["created", "failed", "not_created"]
    id: UUID | None = None
    errors: list[ErrorDetail] = Field(default_factory=list)


class RowResultPage(BaseModel):
    """A page of row results."""

    items: list[RowResult]
    next_after_row: int | None


# a filter-based bulk edit selects what the board shows for these filters
BulkFilter = BoardFilter


class BulkSet(Strict):
    """Fields a bulk edit may set (only those present change)."""

    channels: Count | None = None
    cps: NonNegativeMoney | None = None
    status: Status | None = None
    until: datetime | None = Field(default=None, description="with status `penalty`")
    portal_access: bool | None = None
    country: CountryCode | None = None
    tax: Percent | None = None
    debit_limit: Money | None = None

    @model_validator(mode="after")
    def _penalty_has_until(self) -> BulkSet:
        if self.status == "penalty" and self.until is None:
            raise FieldError("until", "status 'penalty' needs `until`, a future time with a time zone")
        if self.until is not None and self.until.tzinfo is None:
            raise FieldError("until", "`until` must carry a time zone (UTC)")
        if self.until is not None and self.status not in (None, "penalty"):
            raise FieldError("until", "`until` goes only with status 'penalty'")
        return self


class BulkUpdate(Strict):
    """Edit many customers: by `ids`, or every customer the `filter` matches (a page per request)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    ids: list[UUID] | None = Field(default=None, max_length=MAX_BULK_IDS)
    filter: BulkFilter | None = None
    cursor: str | None = Field(default=None, max_length=2000, description="filter paging")
    limit: int = Field(default=MAX_FILTER_PAGE, ge=1, le=MAX_FILTER_PAGE)
    set: BulkSet = Field(default_factory=BulkSet)
    add_tags: list[Tag] = Field(default_factory=list, max_length=50)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _one_target_and_a_change(self) -> BulkUpdate:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either `ids` or `filter`")
        if not self.set.model_fields_set and not self.add_tags and not self.remove_tags:
            raise ValueError("nothing to change: give `set`, `add_tags` or `remove_tags`")
        if self.set.until is not None and self.set.status is None:
            raise ValueError("`set.until` goes with `set.status` = penalty")
        return self


class BulkDelete(Strict):
    """Delete many customers by id."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    ids: list[UUID] = Field(min_length=1, max_length=MAX_BULK_IDS)


class CustomerResult(BaseModel):
    """One customer's outcome in a bulk edit or delete."""

    id: UUID
    ok: bool
    version: int | None = None
    error: ErrorBody | None = None


class BulkResults(BaseModel):
    """Per-customer results; `next_cursor` continues a filter-based edit, `matched` counts it."""

    correlation_id: str | None
    results: list[CustomerResult]
    next_cursor: str | None = None
    matched: int | None = None
