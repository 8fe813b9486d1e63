"""The portal's account routes: balance, payments, invoices, usage, password, low-balance alert, top-up.

Like every portal route, each acts only for the customer and contact inside the session token
(nothing is taken from the client), and first asks the customer service whether the session
still holds (contact there, portal access, password not changed since). Operator-only data is
never passed on: no cost or profit in summaries, no private notes on payments.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from shared.contracts.alerts import AlertSubjects
from shared.contracts.base import Strict
from shared.contracts.contacts import ContactSubjects
from shared.contracts.customer import Subjects as CustomerSubjects
from shared.contracts.invoices import InvoicePage
from shared.contracts.payments import PaymentSubjects
from shared.contracts.portal import PasswordChange, PortalSubjects
from shared.contracts.reporting import ReportingSubjects
from shared.errors import ErrorCode, ErrorDetail

from gateway.dependencies import correlation_id, get_runtime
from gateway.entrypoints.alerts_api import _ask as ask_alerts
from gateway.entrypoints.invoices_api import PDF_DOC, document
from gateway.entrypoints.portal_api import ERRORS, RATE_DOC, LoginAnswer, Session, _portal
from gateway.entrypoints.reporting_api import _ask as ask_reporting
from gateway.entrypoints.reporting_api import _csv
from gateway.errors import ApiError
from gateway.portal.rate_limit import limit_key

router = APIRouter(prefix="/portal/v1", tags=["portal"])
# what a customer sees of its usage: no cost, no profit
FIGURES = ("attempts", "connected", "asr", "acd_s", "duration_s", "billed_duration_s", "charge", "avg_pdd_ms")
PAYMENT_FIELDS = ("id", "kind", "amount", "currency", "method", "reference", "status", "fee", "description",
                  "received_at")
PAYPAL_LIVE = "https://www.paypal.com/cgi-bin/webscr"
PAYPAL_SANDBOX = "https://www.sandbox.paypal.com/cgi-bin/webscr"
ALERT_PREFIX = "portal low balance "


class PortalBalance(BaseModel):
    """Balance and available credit of the contact's customer (shared.money, as the ledger says)."""

    balance: str
    available: str
    debit_limit: str
    currency: str
    as_of: str


class LowBalance(Strict):
    """An e-mail to the contact when available credit falls below `threshold` (null: none)."""

    threshold: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)


class TopUp(Strict):
    """An amount to pay by PayPal (at least the customer's minimum payment)."""

    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2)


class TopUpForm(BaseModel):
    """The form that sends the contact to PayPal: POST `fields` to `action`."""

    action: str
    fields: dict[str, str]


async def _customers(request: Request, subject: str, body: dict[str, Any]) -> Any:
    data = await get_runtime(request).customers.request(
        subject, json.dumps(body, default=str).encode(), correlation_id=correlation_id(request))
    return json.loads(data)


async def checked(request: Request, who: Session) -> dict[str, Any]:
    """The session, checked again by the customer service; with the portal view (`view`)."""
    view = await _customers(request, ContactSubjects.PORTAL_SESSION, who)
    return {**who, "view": view}


Checked = Annotated[dict[str, Any], Depends(checked)]


@router.get("/balance", response_model=PortalBalance, responses=ERRORS, summary="Balance and credit")
async def balance(request: Request, who: Checked) -> PortalBalance:
    """Balance, available credit, debit limit and currency of the contact's customer."""
    data = await _customers(request, PaymentSubjects.BALANCE, {"customer_id": who["customer_id"]})
    return PortalBalance(**{k: str(data[k]) for k in PortalBalance.model_fields})


@router.get("/payments", responses=ERRORS, summary="The customer's payments")
async def payments(
    request: Request, who: Checked, limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Payments, refunds and adjustments, newest first (no operator notes)."""
    page = await _customers(request, PaymentSubjects.LIST, {
        "customer_id": who["customer_id"], "limit": limit, "cursor": cursor})
    items = [{k: p.get(k) for k in PAYMENT_FIELDS} for p in page["items"]]
    return {"items": items, "next_cursor": page.get("next_cursor"), "total": page["total"]}


@router.get("/invoices", response_model=InvoicePage, responses=ERRORS, summary="The customer's invoices")
async def invoices(
    request: Request, who: Checked, limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Invoices, newest first."""
    data = await ask_reporting(request, ReportingSubjects.INVOICES, {
        "customer_id": who["customer_id"], "limit": limit, "cursor": cursor})
    return Response(data, media_type="application/json")


@router.get("/invoices/{invoice_id}.pdf", responses={**ERRORS, **PDF_DOC}, response_class=Response,
            summary="One of the customer's invoices as PDF")
async def invoice_pdf(request: Request, invoice_id: UUID, who: Checked) -> Response:
    """The PDF of an invoice of the contact's customer (another customer's: 404)."""
    return await document(request, invoice_id, "pdf", UUID(who["customer_id"]))


@router.get("/summary", responses=ERRORS, summary="Usage per day or month (JSON or CSV)")
async def summary(
    request: Request, who: Checked, period: Literal["daily", "monthly"] = "daily",
    from_day: Annotated[date | None, Query(alias="from")] = None,
    to_day: Annotated[date | None, Query(alias="to")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
) -> Response:
    """Attempts, connected, ASR, ACD, minutes and charges per period, with totals."""
    data = json.loads(await ask_reporting(request, ReportingSubjects.SUMMARY, {
        "customer_id": who["customer_id"], "period": period, "from": from_day, "to": to_day}))
    rows = [{"period_start": r["period_start"], **{k: r[k] for k in FIGURES}} for r in data["rows"]]
    totals = {k: data["totals"][k] for k in FIGURES}
    if format == "csv":
        text = _csv(("period_start", *FIGURES), [*rows, {**totals, "period_start": "total"}], header=True)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="usage-{period}.csv"'})
    body = {"period": period, "from": data["from"], "to": data["to"], "rows": rows, "totals": totals}
    return Response(json.dumps(body), media_type="application/json")


@router.post("/password", response_model=LoginAnswer, responses={**ERRORS, 429: RATE_DOC},
             summary="Change the password")
async def change_password(request: Request, body: PasswordChange, who: Checked) -> LoginAnswer:
    """The current password, then a new one (12+ characters): every other session of the contact ends.

    The answer is a fresh session token for this browser (the one used here ended too).
    """
    kit, _ = _portal(request)
    settings = get_runtime(request).settings
    await kit.limiter.hit(limit_key("password", who["contact_id"]),
                          limit=settings.portal_code_entries_per_contact,
                          window_s=settings.portal_code_window_s, what="password changes")
    await _customers(request, PortalSubjects.CHANGE_PASSWORD, {
        "meta": _portal_meta(who), "customer_id": who["customer_id"], "contact_id": who["contact_id"],
        "current_password": body.current_password.get_secret_value(),
        "new_password": body.new_password.get_secret_value()})
    if kit.revocations is not None:
        await kit.revocations.revoke(request.state.principal)
    token, expires = kit.sessions.issue(who["contact_id"], who["customer_id"])
    return LoginAnswer(token=token, expires_at=expires.isoformat())


def _portal_meta(who: dict[str, Any]) -> dict[str, Any]:
    return {"actor": {"kind": "portal", "id": who["contact_id"], "name": who["view"]["contact"]["name"],
                      "ip": who["ip"]}}


async def _own_rule(request: Request, who: dict[str, Any]) -> dict[str, Any] | None:
    data = json.loads(await ask_alerts(request, AlertSubjects.LIST, {"customer_id": who["customer_id"]}))
    name = f"{ALERT_PREFIX}{who['contact_id']}"
    return next((r for r in data["items"] if r["name"] == name), None)


@router.get("/alerts/low-balance", response_model=LowBalance, responses=ERRORS,
            summary="The low-balance e-mail")
async def get_low_balance(request: Request, who: Checked) -> LowBalance:
    """The contact's threshold of available credit (null: no e-mail)."""
    rule = await _own_rule(request, who)
    return LowBalance(threshold=Decimal(str(rule["threshold"])) if rule else None)


@router.put("/alerts/low-balance", response_model=LowBalance, responses=ERRORS,
            summary="Set the low-balance e-mail")
async def put_low_balance(request: Request, body: LowBalance, who: Checked) -> LowBalance:
    """An e-mail to the contact when available credit falls below the threshold (null: none).

    Kept as an alert rule scoped to the customer (the alerts service evaluates and sends it),
    once per crossing, re-armed when credit is back at the threshold.
    """
    rule = await _own_rule(request, who)
    meta = _portal_meta(who)
    if body.threshold is None:
        if rule is not None:
            await ask_alerts(request, AlertSubjects.DELETE, {"meta": meta, "alert_id": rule["id"]})
        return LowBalance(threshold=None)
    wanted = {
        "name": f"{ALERT_PREFIX}{who['contact_id']}", "scope": {"customer_id": who["customer_id"]},
        "area": "available_credit", "operator": "lt", "threshold": str(body.threshold),
        "reset_threshold": str(body.threshold), "level": "warning", "state": "ready",
        "actions": {"email_operators": [who["view"]["contact"]["email"]]},
    }
    if rule is None:
        await ask_alerts(request, AlertSubjects.CREATE, {"meta": meta, "rule": wanted})
    else:
        await ask_alerts(request, AlertSubjects.UPDATE,
                         {"meta": meta, "alert_id": rule["id"], "rule": wanted})
    return LowBalance(threshold=body.threshold)


@router.post("/topup/paypal", response_model=TopUpForm, responses=ERRORS, summary="Top up by PayPal")
async def paypal_topup(request: Request, body: TopUp, who: Checked) -> TopUpForm:
    """The form that sends the contact to PayPal (`custom` = the customer): amount >= minimum payment.

    404 when PayPal is not configured; the payment lands through PayPal's IPN (`POST /ipn/paypal`).
    """
    paypal = await _customers(request, PaymentSubjects.GET_PAYPAL, {})
    if not paypal.get("enabled") or not paypal.get("receiver_email"):
        raise ApiError(ErrorCode.NOT_FOUND, "top-up by PayPal is not offered")
    card = await _customers(request, CustomerSubjects.GET, {"customer_id": who["customer_id"]})
    minimum = Decimal(str(card.get("minimum_payment") or 0))
    if body.amount < minimum:
        raise ApiError(ErrorCode.VALIDATION, f"the smallest top-up is {minimum} {card['currency']}",
                       [ErrorDetail(field="amount", type="below_minimum", message=f"at least {minimum}")])
    sandbox = "sandbox" in str(paypal.get("verify_url", ""))
    settings = get_runtime(request).settings
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return TopUpForm(action=PAYPAL_SANDBOX if sandbox else PAYPAL_LIVE, fields={
        "cmd": "_xclick", "business": str(paypal["receiver_email"]), "amount": format(body.amount, "f"),
        "currency_code": str(card["currency"]), "custom": who["customer_id"],
        "item_name": f"Top-up {card['name']}", "notify_url": f"{base}/ipn/paypal",
        "return": f"{base}/portal/", "no_shipping": "1"})


class TopUpOffer(BaseModel):
    """Whether top-up by PayPal is offered, and the smallest amount."""

    offered: bool
    minimum_payment: str
    currency: str


@router.get("/topup/paypal", response_model=TopUpOffer, responses=ERRORS, summary="Is PayPal top-up offered")
async def paypal_offer(request: Request, who: Checked) -> TopUpOffer:
    """Whether the carrier takes PayPal, and the customer's minimum payment."""
    paypal = await _customers(request, PaymentSubjects.GET_PAYPAL, {})
    card = await _customers(request, CustomerSubjects.GET, {"customer_id": who["customer_id"]})
    return TopUpOffer(offered=bool(paypal.get("enabled") and paypal.get("receiver_email")),
                      minimum_payment=str(card.get("minimum_payment") or "0"), currency=str(card["currency"]))
