"""The customer portal for contacts: log in, see the company, verify e-mail and mobile, add CLIs.

Every page calls `/portal/v1/...` in-process with the contact's portal session token, which
lives only in a sealed http-only cookie scoped to `/portal/`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from gateway.web.api_client import Api, SignInRequired
from gateway.web.forms import FormErrors, errors_from, idempotency_headers, text
from gateway.web.pages import TEMPLATES, CsrfFailed, Page, forbidden_page, redirect, sealer, signin_redirect
from gateway.web.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    PORTAL_COOKIE,
    Session,
    csrf_matches,
    login_csrf,
    new_csrf,
    set_login_csrf,
)

PORTAL = "/portal"
COOKIE_PATH = "/portal/"
CHANNELS = ("email", "mobile")


class PortalRoute(APIRoute):
    """An expired or missing portal session goes back to the portal's login."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return signin_redirect(request, f"{PORTAL}/login", PORTAL_COOKIE, COOKIE_PATH)
            except CsrfFailed:
                return forbidden_page(request, "The form was stale (CSRF check failed); reload, try again.")

        return wrapped


router = APIRouter(prefix=PORTAL, route_class=PortalRoute, include_in_schema=False)


def portal_page(request: Request) -> Page:
    """A dependency: the logged-in contact's page, or back to the portal's login."""
    session = sealer(request).open(request.cookies.get(PORTAL_COOKIE))
    if session is None:
        raise SignInRequired("no portal session")
    return Page(request=request, session=session, api=Api(request, session.token))


PortalPage = Annotated[Page, Depends(portal_page)]


def _login_page(request: Request, *, errors: FormErrors | None = None, email: str = "",
                status: int = 200) -> Response:
    csrf = login_csrf(request)
    response = TEMPLATES.TemplateResponse(request, "portal_login.html", {
        "page": None, "csrf": csrf, "email": email, "errors": errors or FormErrors(),
    }, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    set_login_csrf(response, csrf, sealer(request).settings)
    return response


@router.get("/")
async def portal_home(request: Request) -> Response:
    """The company page when logged in, else the login."""
    if sealer(request).open(request.cookies.get(PORTAL_COOKIE)) is None:
        return redirect(f"{PORTAL}/login")
    return redirect(f"{PORTAL}/home")


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The contact's login form."""
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """POST /portal/v1/login; its session token goes into the sealed cookie."""
    form = await request.form()
    email = str(form.get("email") or "").strip()
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), str(form.get(CSRF_FIELD) or "")):
        errors = FormErrors()
        errors.add(None, "The login form was stale (CSRF check failed); try again.")
        return _login_page(request, errors=errors, email=email, status=403)
    api = Api(request, None)
    credentials = {"email": email, "password": str(form.get("password") or "")}
    result = await api.post("/portal/v1/login", json=credentials, allow_unauthenticated=True)
    if not result.ok:
        return _login_page(request, errors=errors_from(result, {"email", "password"}), email=email,
                           status=result.status)
    response = redirect(f"{PORTAL}/home")
    session = Session(token=result.body["token"], csrf=new_csrf(), name=email, role="contact")
    sealer(request).set_cookie(response, PORTAL_COOKIE, session, path=COOKIE_PATH)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(page: PortalPage) -> Response:
    """End the portal session: its token is revoked server-side, and the cookie dropped."""
    await page.form()
    await page.api.post("/portal/v1/logout", allow_unauthenticated=True)
    response = redirect(f"{PORTAL}/login")
    sealer(page.request).clear_cookie(response, PORTAL_COOKIE, path=COOKIE_PATH)
    return response


async def _home(page: Page, *, errors: FormErrors | None = None, failed: str | None = None,
                status: int = 200, **extra: Any) -> Response:
    me = await page.api.get("/portal/v1/me")
    if not me.ok:
        return page.render("portal_error.html", {"message": me.message}, status=me.status)
    context = {"me": me.body, "failed": failed, "notice": page.request.query_params.get("notice"), **extra}
    return page.render("portal_home.html", context, errors=errors, status=status)


@router.get("/home")
async def home(page: PortalPage) -> Response:
    """The company, its public notes, what is verified, the approved CLIs."""
    return await _home(page, pending_cli=page.request.query_params.get("cli"))


@router.post("/verify/{channel}")
async def request_code(page: PortalPage, channel: str) -> Response:
    """Send a code to the contact's e-mail or mobile (a double submit sends one)."""
    form = await page.form()
    channel = channel if channel in CHANNELS else "email"
    result = await page.api.post(f"/portal/v1/verify/{channel}", headers=idempotency_headers(form))
    if result.ok:
        return await _home(page, code_sent=result.body)
    return await _home(page, errors=errors_from(result, {"code"}), failed=channel, status=result.status)


@router.post("/verify/{channel}/confirm")
async def confirm_code(page: PortalPage, channel: str) -> Response:
    """Enter the code."""
    form = await page.form()
    channel = channel if channel in CHANNELS else "email"
    code = text(form, "code")
    result = await page.api.post(f"/portal/v1/verify/{channel}/confirm", json={"code": code},
                                 headers=idempotency_headers(form, code))
    if result.ok:
        return redirect(f"{PORTAL}/home?notice={channel}-verified")
    return await _home(page, errors=errors_from(result, {"code"}), failed=channel, status=result.status)


@router.post("/clis")
async def start_cli(page: PortalPage) -> Response:
    """Ask for a test call to the number; then the code it speaks is entered below."""
    form = await page.form()
    number = text(form, "number")
    result = await page.api.post("/portal/v1/clis", json={"number": number},
                                 headers=idempotency_headers(form, number))
    if result.ok:
        return redirect(f"{PORTAL}/home?cli={quote(number)}")
    return await _home(page, errors=errors_from(result, {"number"}), failed="cli", status=result.status,
                       cli_number=number)


@router.post("/clis/confirm")
async def confirm_cli(page: PortalPage) -> Response:
    """Enter the test call's code; the CLI joins the approved list."""
    form = await page.form()
    number = text(form, "number")
    code = text(form, "code")
    result = await page.api.post(f"/portal/v1/clis/{quote(number, safe='')}/confirm",
                                 json={"code": code}, headers=idempotency_headers(form, number, code))
    if result.ok:
        return redirect(f"{PORTAL}/home?notice=cli-approved")
    return await _home(page, errors=errors_from(result, {"code", "number"}), failed="cli-code",
                       status=result.status, pending_cli=number)
