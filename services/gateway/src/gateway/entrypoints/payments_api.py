"""Money routes: payments (billing, admin), the balance, PayPal settings and the IPN listener.

All of it is answered by the customer service, which keeps the ledger (docs/money.md).
`POST /ipn/paypal` takes no token: it answers 200 once the raw IPN is stored, and the customer
service verifies it with PayPal afterwards.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from shared.contracts.payments import (
    Balance,
    IpnLogPage,
    Kind,
    Method,
    Payment,
    PaymentIn,
    PaymentPage,
    PaymentStatus,
    PaymentStatusPatch,
    PaymentSubjects,
    PaypalSettings,
    PaypalSettingsReply,
)
from shared.errors import ErrorCode

from gateway.auth.roles import Permission
from gateway.csv_export import safe_cell
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.entrypoints.reporting_api import CSV_DOC
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, ApiError

log = structlog.get_logger(__name__)
router = APIRouter(tags=["payments"], responses=COMMON_ERRORS)
Billing = Annotated[Caller, Depends(caller(Permission.PAYMENTS))]
BillingReader = Depends(require(Permission.PAYMENTS))
Reader = Depends(require(Permission.CUSTOMERS_READ))
Admin = Annotated[Caller, Depends(caller(Permission.SETTINGS_WRITE))]
Format = Annotated[Literal["json", "csv"] | None, Query(alias="format")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=200)]
S = PaymentSubjects
PAYMENT_COLUMNS = (
    "id",
    "recorded_at",
    "received_at",
    "kind",
    "amount",
    "currency",
    "method",
    "reference",
    "status",
    "fee",
    "description",
    "source",
    "below_minimum",
    "updated_at",
)
IPN_COLUMNS = (
    "id",
    "received_at",
    "txn_id",
    "payment_status",
    "amount",
    "currency",
    "customer_id",
    "payment_id",
    "verification",
    "outcome",
    "reason",
    "attempts",
    "updated_at",
)
IPN_MAX_BYTES = 64 * 1024


def _json(data: bytes, status_code: int = 200) -> Response:
    return Response(data, status_code=status_code, media_type="application/json")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


async def _ask(request: Request, subject: str, body: dict[str, Any], cid: str | None = None) -> bytes:
    return await get_runtime(request).customers.request(
        subject, _dumps(body), correlation_id=cid or correlation_id(request)
    )


async def _command(request: Request, subject: str, who: Caller, body: dict[str, Any]) -> bytes:
    """A command in the caller's name (its meta and correlation id)."""
    return await _ask(request, subject, {"meta": who.meta(), **body}, who.correlation_id)


def _list_route(path: str, model: type, summary: str, responses: dict[int | str, Any] | None = None) -> Any:
    """A billing list: JSON pages, or every item as CSV."""
    return router.get(path, response_model=model, dependencies=[BillingReader],
                      responses={**(responses or {}), **CSV_DOC}, summary=summary)


async def _list(request: Request, subject: str, body: dict[str, Any], fmt: str | None,
                columns: tuple[str, ...], filename: str) -> Response:
    """One page as JSON, or (`format=csv` or `Accept: text/csv`) every item as CSV."""
    if _wants_csv(request, fmt):
        return await _export(request, subject, body, columns, filename)
    return _json(await _ask(request, subject, body))


@router.post(
    "/v1/customers/{customer_id}/payments",
    status_code=201,
    response_model=Payment,
    responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC},
    summary="Record a payment, refund or adjustment",
)
async def record_payment(request: Request, customer_id: UUID, body: PaymentIn, who: Billing) -> Response:
    """Idempotent by `reference`: the same values answer the payment again, other values are 409."""
    data = await _command(request, S.RECORD, who, {
        "customer_id": str(customer_id), "payment": body.model_dump(mode="json"), "source": "http"})
    return _json(data, 201)


@router.patch(
    "/v1/customers/{customer_id}/payments/{payment_id}",
    response_model=Payment,
    responses={404: NOT_FOUND_DOC},
    summary="Complete or cancel a pending payment",
)
async def set_payment_status(
    request: Request,
    customer_id: UUID,
    payment_id: UUID,
    body: PaymentStatusPatch,
    who: Billing,
) -> Response:
    """`{status}`: pending -> completed or cancelled, nothing else (422 otherwise)."""
    return _json(await _command(request, S.SET_STATUS, who, {
        "customer_id": str(customer_id), "payment_id": str(payment_id), "status": body.status}))


@_list_route("/v1/payments", PaymentPage, "Every customer's payments (JSON or CSV)")
async def list_all_payments(
    request: Request,
    customer_id: UUID | None = None,
    method: Method | None = None,
    status: PaymentStatus | None = None,
    kind: Kind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: Format = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Newest first, across customers; `since`/`until` bound the recorded time; CSV exports all."""
    body = {"customer_id": customer_id, "method": method, "status": status, "kind": kind,
            "since": since, "until": until, "limit": limit, "cursor": cursor}
    return await _list(request, S.LIST, body, fmt, ("customer_id", *PAYMENT_COLUMNS), "payments.csv")


@_list_route("/v1/customers/{customer_id}/payments", PaymentPage, "A customer's payments (JSON or CSV)",
             {404: NOT_FOUND_DOC})
async def list_payments(
    request: Request, customer_id: UUID, fmt: Format = None, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """Newest first; `format=csv` (or `Accept: text/csv`) exports every payment."""
    body = {"customer_id": str(customer_id), "limit": limit, "cursor": cursor}
    return await _list(request, S.LIST, body, fmt, PAYMENT_COLUMNS, f"payments-{customer_id}.csv")


@router.get(
    "/v1/customers/{customer_id}/balance",
    response_model=Balance,
    dependencies=[Reader],
    responses={404: NOT_FOUND_DOC},
    summary="Balance and available credit",
)
async def balance(request: Request, customer_id: UUID) -> Response:
    """Payments - refunds + adjustments + credit notes - charges with tax; available = + debit_limit."""
    return _json(await _ask(request, S.BALANCE, {"customer_id": str(customer_id)}))


@_list_route("/v1/payments/ipn-log", IpnLogPage, "Every PayPal IPN and its outcome")
async def ipn_log(
    request: Request,
    fmt: Format = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    customer_id: UUID | None = None,
    txn_id: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The payment log, newest first (JSON or CSV)."""
    body = {"limit": limit, "cursor": cursor, "customer_id": customer_id, "txn_id": txn_id}
    return await _list(request, S.IPN_LOG, body, fmt, IPN_COLUMNS, "ipn-log.csv")


@router.get(
    "/v1/settings/paypal",
    response_model=PaypalSettingsReply,
    dependencies=[Depends(require(Permission.SETTINGS_WRITE))],
    summary="PayPal settings (admin)",
)
async def get_paypal(request: Request) -> Response:
    """`enabled`, `receiver_email`, `verify_url`."""
    return _json(await _ask(request, S.GET_PAYPAL, {}))


@router.put(
    "/v1/settings/paypal", response_model=PaypalSettingsReply, summary="Set the PayPal settings (admin)"
)
async def put_paypal(request: Request, body: PaypalSettings, who: Admin) -> Response:
    """IPNs are verified at `verify_url` (PayPal's live endpoint by default)."""
    return _json(await _command(request, S.SET_PAYPAL, who, body.model_dump(mode="json")))


@router.post(
    "/ipn/paypal",
    response_class=PlainTextResponse,
    summary="PayPal IPN listener (no token)",
    responses={413: {"description": "body too large"}, 503: {"description": "not stored: PayPal retries"}},
)
async def paypal_ipn(request: Request) -> PlainTextResponse:
    """200 as soon as the raw IPN is stored; verified with PayPal in the background."""
    body = await request.body()
    if len(body) > IPN_MAX_BYTES:
        raise ApiError(ErrorCode.VALIDATION, f"an IPN is at most {IPN_MAX_BYTES} bytes")
    client = request.client.host if request.client else None
    await _ask(
        request,
        S.IPN,
        {
            "body_b64": base64.b64encode(body).decode(),
            "received_at": datetime.now(UTC).isoformat(),
            "remote_addr": client,
        },
    )
    return PlainTextResponse("")


def _wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" if fmt is not None else "text/csv" in request.headers.get("accept", "")


def _csv(columns: tuple[str, ...], items: list[dict[str, Any]], *, header: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(columns)
    # references and descriptions come from people and PayPal: never a formula (csv_export.safe_cell)
    writer.writerows(["" if item.get(c) is None else safe_cell(str(item.get(c))) for c in columns]
                     for item in items)
    return out.getvalue()


async def _export(
    request: Request,
    subject: str,
    body: dict[str, Any],
    columns: tuple[str, ...],
    filename: str,
) -> StreamingResponse:
    first = json.loads(await _ask(request, subject, {**body, "limit": 1000, "cursor": None}))

    async def pages() -> AsyncIterator[str]:
        page = first
        yield _csv(columns, page["items"], header=True)
        while page.get("next_cursor"):
            page = json.loads(
                await _ask(request, subject, {**body, "limit": 1000, "cursor": page["next_cursor"]})
            )
            yield _csv(columns, page["items"])

    return StreamingResponse(
        pages(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
