"""Sign-ups in the console (approve or reject, from the board or the card) and the portal's form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.web.api_client import Api
from gateway.web.board_pages import selected_ids
from gateway.web.forms import FormErrors, errors_from, text
from gateway.web.pages import CONSOLE, TEMPLATES, ConsoleRoute, Page, current_page, redirect, sealer
from gateway.web.portal_pages import router as portal_router
from gateway.web.session import LOGIN_CSRF_COOKIE, csrf_matches, login_csrf, set_login_csrf

router = APIRouter(prefix=f"{CONSOLE}/signups", route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
DECISIONS = {"approve": ("active", "sign-up approved"), "reject": ("inactive", "sign-up rejected")}


@router.post("/{decision}")
async def decide(page: PageDep, decision: str) -> Response:
    """Each ticked customer still pending approval becomes active (approve) or inactive (reject).

    The status change is the customer's own command, so the audit log says who decided.
    """
    form = await page.form()
    status, reason = DECISIONS.get(decision, DECISIONS["reject"])
    ids = selected_ids(form)
    done, failed = 0, []
    for cid in ids[:200]:
        card = await page.api.get(f"/v1/customers/{cid}")
        if not card.ok or card.body.get("status") != "pending_approval":
            continue  # decided already, or not a sign-up: never touched here
        result = await page.api.post(f"/v1/customers/{cid}/status", json={"status": status, "reason": reason})
        if result.ok:
            done += 1
        else:
            failed.append(result.message)
    if text(form, "back") == "card" and len(ids) == 1:
        return redirect(f"{CONSOLE}/customers/{ids[0]}?notice=status")
    return redirect(f"{CONSOLE}/?status=pending_approval&decided={done}&failed={len(failed)}")


def _signup_page(request: Request, *, offer: dict[str, Any] | None, errors: FormErrors | None = None,
                 values: dict[str, str] | None = None, done: bool = False, status: int = 200) -> Response:
    csrf = login_csrf(request)
    response = TEMPLATES.TemplateResponse(request, "portal_signup.html", {
        "page": None, "csrf": csrf, "offer": offer, "errors": errors or FormErrors(), "values": values or {},
        "done": done}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    set_login_csrf(response, csrf, sealer(request).settings)
    return response


@portal_router.get("/signup")
async def signup_form(request: Request) -> Response:
    """The public sign-up form (a notice when sign-up is off)."""
    offer = await Api(request, None).get("/portal/v1/signup", allow_unauthenticated=True)
    return _signup_page(request, offer=offer.body if offer.ok else None)


@portal_router.post("/signup")
async def signup(request: Request) -> Response:
    """POST /portal/v1/signup; the same thank-you page for every accepted sign-up."""
    form = await request.form()
    api = Api(request, None)
    offer = (await api.get("/portal/v1/signup", allow_unauthenticated=True)).body
    values = {k: str(form.get(k) or "").strip() for k in ("company", "contact_name", "email", "currency")}
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get("csrf_token") or "")):
        errors = FormErrors()
        errors.add(None, "The form was stale (CSRF check failed); try again.")
        return _signup_page(request, offer=offer, errors=errors, values=values, status=403)
    errors = FormErrors()
    if str(form.get("password") or "") != str(form.get("password_again") or ""):
        errors.add("password_again", "The two passwords differ.")
        return _signup_page(request, offer=offer, errors=errors, values=values, status=422)
    result = await api.post("/portal/v1/signup", json={**values, "password": str(form.get("password") or "")},
                            allow_unauthenticated=True)
    if not result.ok:
        return _signup_page(request, offer=offer, values=values, status=result.status,
                            errors=errors_from(result, {"company", "contact_name", "email", "password",
                                                        "currency"}))
    response = _signup_page(request, offer=offer, done=True)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response

