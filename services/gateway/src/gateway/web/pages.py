"""What every console page shares: the session, the API as its operator, CSRF checks, rendering."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from gateway.auth.roles import ROLE_PERMISSIONS, Permission, Role
from gateway.web.api_client import Api, SignInRequired
from gateway.web.formatting import FILTERS
from gateway.web.forms import FormErrors, new_form_key
from gateway.web.session import (
    CONSOLE_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    ConsoleSettings,
    CookieSealer,
    Session,
    csrf_matches,
)
from gateway.web.static_files import static_url

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["static_url"] = static_url
TEMPLATES.env.globals["new_form_key"] = new_form_key
TEMPLATES.env.filters.update(FILTERS)  # money, percent, utc (gateway.web.formatting)
CONSOLE = "/console"


class CsrfFailed(Exception):
    """A form post without this session's CSRF token."""


@functools.cache
def _sealer(secret_key: str | None, previous: str | None) -> CookieSealer:
    return CookieSealer(secret_key, ConsoleSettings(), previous)


def sealer(request: Request) -> CookieSealer:
    """The cookie sealer for this gateway's secret keys."""
    settings = request.app.state.runtime.settings
    return _sealer(settings.secret_key, settings.secret_key_previous)


def signin_redirect(request: Request, login_path: str, cookie: str, cookie_path: str) -> Response:
    """Back to the sign-in page (the session cookie dropped), remembering where we were."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{login_path}?next={quote(target, safe='')}" if request.method == "GET" else login_path
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=204, headers={"HX-Redirect": location})
    else:
        response = RedirectResponse(location, status_code=303)
    sealer(request).clear_cookie(response, cookie, path=cookie_path)
    return response


def forbidden_page(request: Request, message: str) -> Response:
    """A plain 403 page."""
    return TEMPLATES.TemplateResponse(
        request, "error.html", {"title": "Not allowed", "message": message, "page": None}, status_code=403
    )


class ConsoleRoute(APIRoute):
    """Turns 'sign in again' and CSRF failures into pages, for every console route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return signin_redirect(request, f"{CONSOLE}/login", CONSOLE_COOKIE, "/")
            except CsrfFailed:
                return forbidden_page(request, "The form was stale or not sent from this console "
                                               "(CSRF check failed). Reload the page and try again.")

        return wrapped


@dataclass
class Page:
    """One console request: who is signed in, and the API as them."""

    request: Request
    session: Session
    api: Api

    @property
    def role(self) -> str:
        """The token's role."""
        return self.session.role

    def can(self, permission: Permission) -> bool:
        """Whether the role holds a permission (the API checks again anyway)."""
        try:
            return permission in ROLE_PERMISSIONS[Role(self.session.role)]
        except ValueError:
            return False

    @property
    def can_write(self) -> bool:
        """May change customers."""
        return self.can(Permission.CUSTOMERS_WRITE)

    @property
    def can_manage_alerts(self) -> bool:
        """May see and change alert rules."""
        return self.can(Permission.ALERTS)

    @property
    def can_pay(self) -> bool:
        """May see and record payments (billing, admin)."""
        return self.can(Permission.PAYMENTS)

    @property
    def is_admin(self) -> bool:
        """May change settings and tokens."""
        return self.can(Permission.TOKENS_MANAGE)

    @property
    def can_erase(self) -> bool:
        """Whether this operator may erase personal data (admins)."""
        return self.can(Permission.PERSONAL_DATA_ERASE)

    @property
    def csrf(self) -> str:
        """This session's CSRF token, for forms."""
        return self.session.csrf

    async def form(self) -> FormData:
        """The posted form, after its CSRF token is checked."""
        form = await self.request.form()
        given = form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER)
        if not csrf_matches(self.session.csrf, given if isinstance(given, str) else None):
            raise CsrfFailed()
        return form

    def reason_headers(self, form: FormData) -> dict[str, str]:
        """`X-Audit-Reason` from the form's reason field, when one was given."""
        reason = form.get("reason")
        if isinstance(reason, str) and reason.strip():
            return {"X-Audit-Reason": reason.strip().replace("\n", " ")[:500]}
        return {}

    def render(self, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
               errors: FormErrors | None = None) -> Response:
        """A page with the shared context (the page itself, errors)."""
        ctx = {"page": self, "errors": errors or FormErrors(), **(context or {})}
        response = TEMPLATES.TemplateResponse(self.request, template, ctx, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        if self.request.method == "GET" and self.request.headers.get("HX-Boosted") == "true":
            # a boosted form's POST followed its 303 here: the address bar shows this page, not the
            # form's (a reload of `/new` would show an empty form)
            url = self.request.url
            response.headers["HX-Push-Url"] = url.path + (f"?{url.query}" if url.query else "")
        return response


def current_page(request: Request) -> Page:
    """A dependency: the signed-in operator's page, or back to sign-in."""
    session = sealer(request).open(request.cookies.get(CONSOLE_COOKIE))
    if session is None:
        raise SignInRequired("no session")
    return Page(request=request, session=session, api=Api(request, session.token))


def redirect(location: str) -> Response:
    """See other (after a successful post)."""
    return RedirectResponse(location, status_code=303)
