"""Sign in with an operator token, sign out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.dependencies import get_runtime
from gateway.web.forms import FormErrors
from gateway.web.pages import CONSOLE, TEMPLATES, ConsoleRoute, Page, current_page, redirect, sealer
from gateway.web.session import (
    CONSOLE_COOKIE,
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    Session,
    csrf_matches,
    login_csrf,
    new_csrf,
    set_login_csrf,
)

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if value and value.startswith(f"{CONSOLE}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{CONSOLE}/"


def _login_page(request: Request, *, next_path: str, errors: FormErrors | None = None,
                status: int = 200) -> Response:
    csrf = login_csrf(request)
    response = TEMPLATES.TemplateResponse(
        request, "login.html",
        {"page": None, "csrf": csrf, "next": next_path, "errors": errors or FormErrors()},
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    set_login_csrf(response, csrf, sealer(request).settings)
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in page."""
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token (the same store the API uses) and open a session in a sealed cookie."""
    form = await request.form()
    next_path = _safe_next(str(form.get("next") or ""))
    errors = FormErrors()
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get(CSRF_FIELD) or "")):
        errors.add(None, "The sign-in form was stale (CSRF check failed); try again.")
        return _login_page(request, next_path=next_path, errors=errors, status=403)
    token = str(form.get("token") or "").strip()
    principal = await get_runtime(request).tokens.authenticate(token) if token else None
    if principal is None:
        errors.add("token", "This token is unknown or revoked." if token else "Paste an operator token.")
        return _login_page(request, next_path=next_path, errors=errors, status=401)
    response = redirect(next_path)
    # the cookie holds a session token of its own (never the pasted one): logout revokes it
    ttl = sealer(request).settings.session_ttl_s
    session_token = await get_runtime(request).tokens.open_session(
        principal, datetime.now(UTC) + timedelta(seconds=ttl))
    session = Session(token=session_token, csrf=new_csrf(), name=principal.name, role=str(principal.role))
    sealer(request).set_cookie(response, CONSOLE_COOKIE, session, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(page: Annotated[Page, Depends(current_page)]) -> Response:
    """Close the session: its session token is revoked and the cookie dropped (the operator's own
    token stays valid)."""
    await page.form()
    await get_runtime(page.request).tokens.close_session(page.session.token)
    response = redirect(f"{CONSOLE}/login")
    sealer(page.request).clear_cookie(response, CONSOLE_COOKIE, path="/")
    return response
