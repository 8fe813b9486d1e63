"""The card's Payments tab: the ledger's payments, recording one, completing or cancelling a pending one."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from gateway.auth.roles import Permission
from gateway.web.card_pages import card_header, load_card, not_found
from gateway.web.forms import FormErrors, checked, errors_from, text, text_or_none
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, redirect

router = APIRouter(prefix=f"{CONSOLE}/customers/{{customer_id}}", route_class=ConsoleRoute,
                   include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
FIELDS = frozenset({"kind", "amount", "method", "reference", "status", "fee", "description", "private_note",
                    "notify_contacts", "currency"})
KINDS = ("payment", "refund", "adjustment")
METHODS = (("manual", "Manual"), ("bank_transfer", "Bank transfer"), ("paypal", "PayPal"), ("card", "Card"),
           ("other", "Other"))
STATUSES = ("completed", "pending")


async def payments_tab(page: Page, customer_id: str, *, values: dict[str, Any] | None = None,
                       errors: FormErrors | None = None, status: int = 200) -> Response:
    """The tab: balance, the record form, the payments newest first."""
    loaded = await load_card(page, customer_id)
    if not loaded.ok:
        return not_found(page, loaded)
    card = loaded.body
    can = page.can(Permission.PAYMENTS)
    url = f"/v1/customers/{customer_id}/payments"
    listed = await page.api.get(url, params={"limit": 200}) if can else None
    return page.render("card_payments.html", {
        "card": card, "tab": "payments", **await card_header(page, card), "can_pay": can,
        "payments": listed.body["items"] if listed is not None and listed.ok else [],
        "total": listed.body["total"] if listed is not None and listed.ok else 0,
        "kinds": KINDS, "methods": METHODS, "statuses": STATUSES,
        "values": values or {"kind": "payment", "method": "bank_transfer", "status": "completed",
                             "reference": f"manual-{uuid.uuid4().hex[:10]}"},
        "notice": page.request.query_params.get("notice"),
    }, errors=errors, status=status)


@router.get("/payments")
async def payments(page: PageDep, customer_id: str) -> Response:
    """The Payments tab."""
    return await payments_tab(page, customer_id)


@router.post("/payments")
async def record(page: PageDep, customer_id: str) -> Response:
    """POST /v1/customers/{id}/payments from the form."""
    form = await page.form()
    card = await load_card(page, customer_id)
    if not card.ok:
        return not_found(page, card)
    values = {
        "kind": text(form, "kind") or "payment", "amount": text(form, "amount"),
        "currency": card.body["currency"], "method": text(form, "method") or "manual",
        "reference": text(form, "reference"), "status": text(form, "status") or "completed",
        "fee": text_or_none(form, "fee"), "description": text_or_none(form, "description"),
        "private_note": text_or_none(form, "private_note"),
        "notify_contacts": checked(form, "notify_contacts"),
    }
    result = await page.api.post(f"/v1/customers/{customer_id}/payments", json=values)
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}/payments?notice=recorded")
    return await payments_tab(page, customer_id, values=values, errors=errors_from(result, FIELDS),
                              status=result.status)


@router.post("/payments/{payment_id}/status")
async def change_status(page: PageDep, customer_id: str, payment_id: str) -> Response:
    """PATCH a pending payment to completed or cancelled."""
    form = await page.form()
    result = await page.api.patch(f"/v1/customers/{customer_id}/payments/{payment_id}",
                                  json={"status": text(form, "status")})
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}/payments?notice=status")
    return await payments_tab(page, customer_id, errors=errors_from(result, FIELDS), status=result.status)
