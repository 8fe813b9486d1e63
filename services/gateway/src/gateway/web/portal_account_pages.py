"""Portal pages of the customer's account: balance and top-up, invoices, payments, usage, settings.

Each page calls `/portal/v1/...` in-process with the contact's session token from its sealed
cookie (see portal_pages.py); a changed password reseals the cookie with the fresh token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi import Response

from gateway.web.forms import FormErrors, errors_from, text
from gateway.web.pages import redirect, sealer
from gateway.web.portal_pages import COOKIE_PATH, PORTAL, PortalPage, router
from gateway.web.session import PORTAL_COOKIE, Session


async def _account(page: PortalPage, *, errors: FormErrors | None = None, status: int = 200,
                   topup_amount: str = "") -> Response:
    balance = await page.api.get("/portal/v1/balance")
    if not balance.ok:
        return page.render("portal_error.html", {"message": balance.message}, status=balance.status)
    invoices = await page.api.get("/portal/v1/invoices", params={"limit": 50})
    payments = await page.api.get("/portal/v1/payments", params={"limit": 20})
    offer = await page.api.get("/portal/v1/topup/paypal")
    return page.render("portal_account.html", {
        "balance": balance.body, "invoices": invoices.body if invoices.ok else {"items": [], "total": 0},
        "payments": payments.body if payments.ok else {"items": [], "total": 0},
        "offer": offer.body if offer.ok else None, "topup_amount": topup_amount,
        "notice": page.request.query_params.get("notice"),
    }, errors=errors, status=status)


@router.get("/account")
async def account(page: PortalPage) -> Response:
    """Balance and credit, invoices to download, payments, and the PayPal top-up when offered."""
    return await _account(page)


@router.get("/invoices/{invoice_id}.pdf")
async def invoice_pdf(page: PortalPage, invoice_id: UUID) -> Response:
    """One of the customer's invoices as PDF (another customer's: 404)."""
    result = await page.api.get(f"/portal/v1/invoices/{invoice_id}.pdf")
    if not result.ok:
        return page.render("portal_error.html", {"message": result.message}, status=result.status)
    return Response(result.content, media_type="application/pdf", headers={
        "Content-Disposition": result.headers.get("content-disposition", "inline"),
        "Cache-Control": "private, no-store"})


@router.post("/topup")
async def topup(page: PortalPage) -> Response:
    """The amount checked, then a page with the form that goes on to PayPal."""
    form = await page.form()
    amount = text(form, "amount")
    result = await page.api.post("/portal/v1/topup/paypal", json={"amount": amount})
    if not result.ok:
        return await _account(page, errors=errors_from(result, {"amount"}), status=result.status,
                              topup_amount=amount)
    return page.render("portal_topup.html", {"form": result.body})


@router.get("/usage")
async def usage(page: PortalPage) -> Response:
    """Calls and charges per day or month, with totals and a CSV download."""
    q = page.request.query_params
    period = q.get("period") if q.get("period") in ("daily", "monthly") else "daily"
    today = datetime.now(UTC).date()
    start = q.get("from") or (today - timedelta(days=30 if period == "daily" else 365)).isoformat()
    until = q.get("to") or today.isoformat()
    params = {"period": period, "from": start, "to": until}
    result = await page.api.get("/portal/v1/summary", params=params)
    if not result.ok:
        return page.render("portal_error.html", {"message": result.message}, status=result.status)
    balance = await page.api.get("/portal/v1/balance")  # the currency, for the charges
    currency = balance.body.get("currency") if balance.ok else None
    return page.render("portal_usage.html", {"usage": result.body, "params": params, "currency": currency})


@router.get("/usage.csv")
async def usage_csv(page: PortalPage) -> Response:
    """The same rows as CSV."""
    params = {k: v for k, v in page.request.query_params.items() if k in ("period", "from", "to")}
    result = await page.api.get("/portal/v1/summary", params={**params, "format": "csv"})
    if not result.ok:
        return page.render("portal_error.html", {"message": result.message}, status=result.status)
    return Response(result.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": result.headers.get("content-disposition", "attachment")})


async def _settings(page: PortalPage, *, errors: FormErrors | None = None, failed: str | None = None,
                    status: int = 200) -> Response:
    alert = await page.api.get("/portal/v1/alerts/low-balance")
    return page.render("portal_settings.html", {
        "threshold": alert.body.get("threshold") if alert.ok else None, "failed": failed,
        "alerts_down": not alert.ok, "notice": page.request.query_params.get("notice"),
    }, errors=errors, status=status)


@router.get("/settings")
async def settings(page: PortalPage) -> Response:
    """Change the password; the low-balance e-mail."""
    return await _settings(page)


@router.post("/password")
async def change_password(page: PortalPage) -> Response:
    """The current password and a new one; other sessions end, this browser gets a fresh one."""
    form = await page.form()
    new, again = text(form, "new_password"), text(form, "new_password_again")
    if new != again:
        errors = FormErrors()
        errors.add("new_password_again", "The two new passwords differ.")
        return await _settings(page, errors=errors, failed="password", status=422)
    result = await page.api.post("/portal/v1/password", json={
        "current_password": text(form, "current_password"), "new_password": new})
    if not result.ok:
        return await _settings(page, errors=errors_from(result, {"current_password", "new_password"}),
                               failed="password", status=result.status)
    response = redirect(f"{PORTAL}/settings?notice=password-changed")
    session = Session(token=result.body["token"], csrf=page.session.csrf, name=page.session.name,
                      role="contact")
    sealer(page.request).set_cookie(response, PORTAL_COOKIE, session, path=COOKIE_PATH)
    return response


@router.post("/alerts/low-balance")
async def low_balance(page: PortalPage) -> Response:
    """Set the threshold (empty: no e-mail)."""
    form = await page.form()
    value = text(form, "threshold")
    result = await page.api.put("/portal/v1/alerts/low-balance", json={"threshold": value or None})
    if not result.ok:
        return await _settings(page, errors=errors_from(result, {"threshold"}), failed="alert",
                               status=result.status)
    return redirect(f"{PORTAL}/settings?notice=alert-saved")
