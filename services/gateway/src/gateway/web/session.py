"""Browser sessions of the console and the portal: sealed, http-only cookies, and CSRF tokens.

The operator's API token (or the contact's portal session token) travels only inside a
cookie sealed with Fernet (encrypted and authenticated), so the browser's scripts never
see it and a tampered cookie is worthless. Each session carries its own CSRF token; every
form post must echo it. Before sign-in, a separate random cookie plays that role
(double submit), so the sign-in form is protected too.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from fastapi import Request, Response
from pydantic_settings import BaseSettings, SettingsConfigDict
from shared.keys import KeyRing, legacy_digest

log = structlog.get_logger(__name__)

CONSOLE_COOKIE = "pb_console"
PORTAL_COOKIE = "pb_portal"
LOGIN_CSRF_COOKIE = "pb_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class ConsoleSettings(BaseSettings):
    """`PATCHBAY_CONSOLE_*`: cookie flags and session lifetime of the web pages."""

    model_config = SettingsConfigDict(env_prefix="PATCHBAY_CONSOLE_", extra="ignore")

    # browsers keep Secure cookies on https and on http://localhost / 127.0.0.1 only;
    # set false only behind a trusted plain-http network
    secure_cookies: bool = True
    session_ttl_s: int = 8 * 3600


@dataclass(frozen=True)
class Session:
    """An open browser session: the bearer token to act with, who it is, and its CSRF token."""

    token: str
    csrf: str
    name: str = ""
    role: str = ""


class CookieSealer:
    """Seals session payloads into cookie values and opens them (within their lifetime)."""

    def __init__(
        self, secret_key: str | None, settings: ConsoleSettings, previous: str | None = None
    ) -> None:
        if secret_key:
            # the `console-cookies` key of each configured secret (current first), then the pre-HKDF ones
            ring = KeyRing.of(secret_key, previous)
            raws = [*ring.keys("console-cookies"), *(legacy_digest(k, "web-sessions") for k in ring.secrets)]
        else:
            log.warning("web_session_key_random", effect="browser sessions end when the gateway restarts")
            raws = [secrets.token_bytes(32)]
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(raw)) for raw in raws])
        self.settings = settings

    def seal(self, session: Session) -> str:
        """The cookie value for a session."""
        payload = {"t": session.token, "c": session.csrf, "n": session.name, "r": session.role}
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value; None if absent, altered or expired."""
        if not value:
            return None
        try:
            data: dict[str, Any] = json.loads(
                self._fernet.decrypt(value.encode(), ttl=self.settings.session_ttl_s)
            )
        except (InvalidToken, ValueError):
            return None
        return Session(token=data["t"], csrf=data["c"], name=data.get("n", ""), role=data.get("r", ""))

    def set_cookie(self, response: Response, name: str, session: Session, *, path: str) -> None:
        """Put a session on the response: http-only, SameSite=Strict, Secure unless configured off."""
        response.set_cookie(
            name, self.seal(session), max_age=self.settings.session_ttl_s, path=path,
            httponly=True, secure=self.settings.secure_cookies, samesite="strict",
        )

    def clear_cookie(self, response: Response, name: str, *, path: str) -> None:
        """Remove a session cookie."""
        response.delete_cookie(
            name, path=path, httponly=True, secure=self.settings.secure_cookies, samesite="strict"
        )


def new_csrf() -> str:
    """A fresh CSRF token."""
    return secrets.token_urlsafe(24)


def login_csrf(request: Request) -> str:
    """The pre-sign-in CSRF token of this browser (made when absent; see `set_login_csrf`)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or new_csrf()


def set_login_csrf(response: Response, value: str, settings: ConsoleSettings) -> None:
    """Keep the pre-sign-in CSRF token in its own short-lived cookie."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, max_age=3600, path="/", httponly=True,
        secure=settings.secure_cookies, samesite="strict",
    )


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
