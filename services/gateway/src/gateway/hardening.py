"""The gateway's outer layer against attack: the client's real address, and security headers.

Every answer carries a content security policy (only this origin's scripts, styles and
forms; no framing), `nosniff`, `no-referrer` (links carry codes) and, when the request came
over TLS (directly or through a trusted proxy), HSTS.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import api_docs
from gateway.client_ip import TrustedProxies, parse_networks
from gateway.settings import GatewaySettings

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI sets inline styles on the elements it draws (no inline script, still)
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# the headers to add, by (under /docs, over TLS): made once, not per answer
EXTRA: dict[tuple[bool, bool], tuple[tuple[bytes, bytes], ...]] = {
    (docs, tls): (*HEADERS, (b"content-security-policy", (DOCS_CSP if docs else CSP).encode()),
                  *((HSTS,) if tls else ()))
    for docs in (False, True) for tls in (False, True)
}


class SecurityHeaders:
    """ASGI: adds the security headers to every HTTP answer (a route's own CSP wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; add the headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = EXTRA[(scope["path"].startswith("/docs"), scope.get("scheme") == "https")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_hardening(app: FastAPI, settings: GatewaySettings) -> None:
    """Add the middlewares (the last added runs first) and the self-hosted /docs."""
    if settings.api_docs:
        app.include_router(api_docs.router)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedProxies, proxies=parse_networks(settings.trusted_proxies))
