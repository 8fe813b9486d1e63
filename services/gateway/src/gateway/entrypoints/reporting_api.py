"""Reporting routes: audit log, as-of, call summaries (JSON or CSV), invoices, lag."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from shared.contracts.customer import AsOfCard, Subjects
from shared.contracts.reporting import (
    AuditPage,
    Invoice,
    InvoicePage,
    InvoiceRequest,
    Lag,
    Period,
    Summary,
)
from shared.contracts.reporting import ReportingSubjects as Reporting
from shared.errors import ErrorCode

from gateway.auth.roles import Permission, Role
from gateway.auth.tokens import Principal
from gateway.csv_export import write_rows
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, ApiError
from gateway.service_client import ServiceClient

router = APIRouter(tags=["reporting"], responses=COMMON_ERRORS)

Reader = Depends(require(Permission.CUSTOMERS_READ))
MultiValue = Annotated[list[str] | None, Query(description="Repeat, or separate with commas.")]
Format = Annotated[Literal["json", "csv"] | None, Query(alias="format")]
CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "JSON; with `format=csv` or `Accept: text/csv`, CSV."},
}
EXPORT_PAGE = 1000
FIGURES = ("attempts", "connected", "asr", "acd_s", "duration_s", "billed_duration_s", "charge", "cost",
           "profit", "profit_pct", "avg_pdd_ms")
AUDIT_COLUMNS = ("occurred_at", "customer_id", "type", "action", "version", "actor.kind", "actor.id",
                 "actor.name", "ip", "reason", "correlation_id", "changes", "data", "event_id")
INVOICE_COLUMNS = ("id", "document_number", "number", "customer_id", "status", "currency", "issue_date",
                   "due_date", "period_from", "period_to", "subtotal", "tax_rate", "tax", "total",
                   "amount_paid", "amount_credited", "amount_due", "created_at")


def role_in(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: a valid token whose role is one of these."""

    async def check(principal: Annotated[Principal, Reader]) -> Principal:
        if principal.role not in roles:
            raise ApiError(ErrorCode.FORBIDDEN, f"role '{principal.role}' may not do this"
                           f" (needs one of: {', '.join(roles)})")
        return principal

    return check


def _client(request: Request) -> ServiceClient:
    runtime = get_runtime(request)
    return ServiceClient(runtime.nc, service="reporting", timeout_s=runtime.settings.request_timeout_s)


async def _ask(request: Request, subject: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":"), default=str).encode()
    return await _client(request).request(subject, payload, correlation_id=correlation_id(request))


def _json(data: bytes, status_code: int = 200) -> Response:
    return Response(data, status_code=status_code, media_type="application/json")


def _wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" if fmt is not None else "text/csv" in request.headers.get("accept", "")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _value(item: dict[str, Any], column: str) -> Any:
    group, _, key = column.partition(".")
    return (item.get(group) or {}).get(key) if key else item.get(column)


def _csv(columns: Iterable[str], items: Iterable[dict[str, Any]], *, header: bool = False) -> str:
    out = io.StringIO()
    rows = [[_cell(_value(item, c)) for c in columns] for item in items]
    write_rows(out, [list(columns), *rows] if header else rows)
    return out.getvalue()


async def _export(
    request: Request, subject: str, body: dict[str, Any], columns: tuple[str, ...], filename: str
) -> StreamingResponse:
    """Every page of a list as CSV (the first page is asked before the 200 goes out)."""
    first = json.loads(await _ask(request, subject, {**body, "limit": EXPORT_PAGE}))

    async def pages() -> AsyncIterator[str]:
        page = first
        yield _csv(columns, page["items"], header=True)
        while True:
            if not page.get("next_cursor"):
                return
            page = json.loads(await _ask(request, subject, {**body, "limit": EXPORT_PAGE,
                                                            "cursor": page["next_cursor"]}))
            yield _csv(columns, page["items"])

    return StreamingResponse(pages(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _audit(request: Request, body: dict[str, Any], fmt: str | None, name: str) -> Response:
    if _wants_csv(request, fmt):
        return await _export(request, Reporting.AUDIT, body, AUDIT_COLUMNS, name)
    return _json(await _ask(request, Reporting.AUDIT, body))


@router.get("/v1/customers/{customer_id}/audit", response_model=AuditPage,
            responses={**CSV_DOC, 404: NOT_FOUND_DOC}, dependencies=[Reader],
            summary="A customer's audit log")
async def customer_audit(
    request: Request, customer_id: UUID, since: datetime | None = None, until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None, type: MultiValue = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None, format: Format = None,
) -> Response:
    """Every event about the customer, newest first: when, who, from which IP, what, the diff."""
    types = [t.strip() for v in type or [] for t in v.split(",") if t.strip()] or None
    body = {"customer_id": customer_id, "since": since, "until": until, "actor": actor, "type": types,
            "limit": limit, "cursor": cursor}
    if _wants_csv(request, format):
        await _known_customer(request, customer_id)
        return await _export(request, Reporting.AUDIT, body, AUDIT_COLUMNS, f"audit-{customer_id}.csv")
    data = await _ask(request, Reporting.AUDIT, body)
    if cursor is None and not json.loads(data)["items"]:  # nothing at all: is there such a customer?
        await _known_customer(request, customer_id)
    return _json(data)


async def _known_customer(request: Request, customer_id: UUID) -> None:
    """404 for a customer that never existed; a deleted one still has its audit log."""
    try:
        await get_runtime(request).customers.request(
            Subjects.GET, b'{"customer_id":"%s"}' % str(customer_id).encode(),
            correlation_id=correlation_id(request))
    except ApiError as exc:
        if exc.code != ErrorCode.DELETED:
            raise


@router.get("/v1/audit", response_model=AuditPage, responses=CSV_DOC, summary="The whole audit log",
            dependencies=[Depends(role_in(Role.ADMIN))])
async def global_audit(
    request: Request, since: datetime | None = None, until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None, type: MultiValue = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None, format: Format = None,
) -> Response:
    """Every event of every customer (and the settings), newest first; admins only."""
    types = [t.strip() for v in type or [] for t in v.split(",") if t.strip()] or None
    body = {"since": since, "until": until, "actor": actor, "type": types, "limit": limit, "cursor": cursor}
    return await _audit(request, body, format, "audit.csv")


@router.get("/v1/customers/{customer_id}/as-of", response_model=AsOfCard, dependencies=[Reader],
            responses={404: NOT_FOUND_DOC}, summary="The card as it was at an instant")
async def as_of(request: Request, customer_id: UUID, at: datetime) -> Response:
    """The card folded from the customer's events up to `at` (404 if it did not exist yet)."""
    payload = json.dumps({"customer_id": customer_id, "at": at}, separators=(",", ":"), default=str).encode()
    customers = get_runtime(request).customers  # the customer service owns the events (ADR 9)
    return _json(await customers.request(Subjects.AS_OF, payload, correlation_id=correlation_id(request)))


@router.get("/v1/customers/{customer_id}/summary", response_model=Summary, responses=CSV_DOC,
            dependencies=[Reader], summary="Call summary rows with totals")
async def summary(
    request: Request, customer_id: UUID, period: Period = "daily",
    from_day: Annotated[date | None, Query(alias="from")] = None,
    to_day: Annotated[date | None, Query(alias="to")] = None, format: Format = None,
) -> Response:
    """Live (channels in use, last 24 h by hour), daily, weekly or monthly rows in UTC, and totals."""
    data = await _ask(request, Reporting.SUMMARY, {"customer_id": customer_id, "period": period,
                                                   "from": from_day, "to": to_day})
    if not _wants_csv(request, format):
        return _json(data)
    body = json.loads(data)
    columns = ("period_start", *FIGURES)
    text = _csv(columns, [*body["rows"], {**body["totals"], "period_start": "total"}], header=True)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="summary-{customer_id}-{period}.csv"'})


@router.post("/v1/customers/{customer_id}/invoices", status_code=201, response_model=Invoice,
             responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC}, summary="Generate an invoice",
             # the role before anything else: a viewer gets 403 whatever it sends, never a 422
             dependencies=[Depends(role_in(Role.BILLING, Role.ADMIN))])
async def generate_invoice(
    request: Request, customer_id: UUID, body: InvoiceRequest,
    who: Annotated[Caller, Depends(caller(Permission.CUSTOMERS_READ))],
) -> Response:
    """Invoice a date range or chosen days (billing, admin); a day already invoiced is 409."""
    data = await _ask(request, Reporting.GENERATE_INVOICE, {
        "meta": who.meta(), "customer_id": customer_id,
        **body.model_dump(mode="json", by_alias=True, exclude_none=True)})
    invoice_id = json.loads(data)["id"]
    return Response(data, status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/invoices/{invoice_id}"})


@router.get("/v1/invoices", response_model=InvoicePage, responses=CSV_DOC, dependencies=[Reader],
            summary="Invoices")
async def list_invoices(
    request: Request, customer_id: UUID | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None, format: Format = None,
    status: Annotated[list[Literal["open", "paid", "overdue", "void"]] | None, Query()] = None,
    period_from: date | None = None, period_to: date | None = None,
) -> Response:
    """Invoices, newest first, of one customer or all, of some statuses (repeat `status`) or all,
    whose billed period overlaps `period_from`..`period_to` (either may be left out)."""
    body = {"customer_id": customer_id, "limit": limit, "cursor": cursor, "status": status,
            "period_from": period_from, "period_to": period_to}
    if _wants_csv(request, format):
        return await _export(request, Reporting.INVOICES, body, INVOICE_COLUMNS, "invoices.csv")
    return _json(await _ask(request, Reporting.INVOICES, body))


@router.get("/v1/invoices/{invoice_id}", response_model=Invoice, dependencies=[Reader],
            responses={404: NOT_FOUND_DOC}, summary="One invoice")
async def get_invoice(request: Request, invoice_id: UUID) -> Response:
    """One invoice with its lines."""
    return _json(await _ask(request, Reporting.INVOICE, {"invoice_id": invoice_id}))


@router.get("/v1/reporting/lag", response_model=Lag, dependencies=[Reader],
            summary="Projection lag and rebuild progress")
async def lag(request: Request) -> Response:
    """How far each projection is behind its streams, and how far the last rebuilds got."""
    return _json(await _ask(request, Reporting.LAG, {}))
