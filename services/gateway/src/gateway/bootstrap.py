"""The composition root: builds the runtime (migrations, pool, NATS, tokens) and the app."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from shared.bus import new_client
from shared.ops import readiness, serve_ops
from shared.service_runtime import Plumbing, ServiceRuntime

from gateway.auth.tokens import TokenCache, TokenStore
from gateway.entrypoints import (
    alerts_api,
    board,
    bulk_api,
    contacts_api,
    customers,
    demo_api,
    health,
    invoices_api,
    messages_api,
    notifier_settings_api,
    number_blocks_api,
    payments_api,
    portal_account_api,
    portal_api,
    privacy_api,
    reporting_api,
    settings_api,
    signup_api,
    tokens_api,
)
from gateway.errors import install_error_handlers
from gateway.fast_routes import FastRoutes
from gateway.hardening import install_hardening
from gateway.middleware import RequestContextMiddleware
from gateway.openapi_doc import install_openapi
from gateway.portal.login_guard import LoginSlots
from gateway.portal.rate_limit import RateLimiter
from gateway.portal.sessions import PortalRevocations, PortalSessions, session_key
from gateway.runtime import PortalKit, Runtime
from gateway.service_client import ServiceClient
from gateway.settings import GatewaySettings
from gateway.web import router as web_router

SCHEMA = "gateway"
MIGRATIONS = Path(__file__).parent / "migrations"
# no streams (the gateway only sends requests); queries name the gateway schema themselves
PLUMBING = Plumbing(name="gateway", schema=SCHEMA, migrations=MIGRATIONS, pool_min=1, search_path=False,
                    nats_name="patchbay-gateway", reconnect_time_wait_s=1)
log = structlog.get_logger(__name__)


def nats_client() -> tuple[NatsClient, dict[str, Any]]:
    """A client that logs its ups and downs (not our own close), and its connect options."""
    nc = new_client("gateway")  # signs the commands it sends: the services check who vouches for the actor

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", error=repr(exc))

    async def on_disconnect() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats_disconnected")

    async def on_reconnect() -> None:
        log.info("nats_reconnected")

    return nc, {"connect_timeout": 5, "error_cb": on_error, "disconnected_cb": on_disconnect,
                "reconnected_cb": on_reconnect}


async def ensure_first_token(tokens: TokenStore, settings: GatewaySettings) -> None:
    """Install PATCHBAY_ADMIN_TOKEN, or with no token at all make one and print it once."""
    if settings.admin_token is not None:
        await tokens.ensure_admin(settings.admin_token.get_secret_value())
        return
    created = await tokens.ensure_any()
    if created is not None:
        # stdout, never the structured log: the one time this secret is shown
        print(f"Patchbay: created the first admin token (shown once): {created}", file=sys.stdout, flush=True)


async def start(settings: GatewaySettings) -> Runtime:
    """Migrate the `gateway` schema, open the pool, connect, make sure an admin token exists."""
    client, options = nats_client()
    service = await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size, client=client,
                                        **options)
    pool, nc = service.pool, service.nc
    try:
        tokens = TokenStore(pool, TokenCache(settings.token_cache_ttl_s))
        await ensure_first_token(tokens, settings)
    except BaseException:
        await service.stop()
        raise
    customers = ServiceClient(nc, service="customer", timeout_s=settings.request_timeout_s)
    verification = ServiceClient(nc, service="verification", timeout_s=settings.request_timeout_s)
    key = settings.portal_session_key.get_secret_value() if settings.portal_session_key else None
    keys = session_key(key, settings.secret_key, settings.secret_key_previous)
    portal = PortalKit(PortalSessions(keys, settings.portal_session_ttl_s),
                       RateLimiter(pool), LoginSlots(settings.portal_login_concurrency),
                       PortalRevocations(pool))
    log.info("gateway_started", nats=settings.nats_url)
    return Runtime(settings=settings, pool=pool, nc=nc, tokens=tokens, customers=customers,
                   verification=verification, portal=portal)


def create_app(settings: GatewaySettings) -> FastAPI:
    """The FastAPI app; its lifespan starts and stops the runtime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start(settings)
        app.state.runtime = runtime
        # /metrics, /healthz, /readyz on PATCHBAY_OPS_PORT, like every other service
        ops = await serve_ops("gateway", settings.ops_port, readiness(pool=runtime.pool, nc=runtime.nc))
        try:
            yield
        finally:
            if ops is not None:
                await ops.stop()
            await runtime.stop()
            log.info("gateway_stopped")

    app = FastAPI(
        title="Patchbay API", version="0.1.0", lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from our own files: gateway.api_docs
        # no OpenTelemetry here (Prometheus metrics, structured logs): FastAPI's bridge looked for
        # configured providers on every request (1.5% of the gateway's CPU, docs/performance.md)
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Customer management for VoIP carriers. Errors always answer "
                    '`{"error": {"code", "message", "details"}}`.',
    )
    install_error_handlers(app)
    install_openapi(app)  # 413 on every body, the streamed answers' schemas
    app.add_middleware(FastRoutes)  # innermost: the plain hot card requests without FastAPI's machinery
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_limits={"/v1/customers/bulk": settings.bulk_max_body_bytes,
                                    "/console/bulk/upload": settings.bulk_max_body_bytes})
    install_hardening(app, settings)  # outermost: client address first, security headers on every answer
    for module in (health, customers, board, settings_api, tokens_api):
        app.include_router(module.router)
    for extra in (contacts_api, portal_api, privacy_api, portal_account_api, signup_api):
        app.include_router(extra.router)
    for notifier_module in (messages_api, notifier_settings_api):
        app.include_router(notifier_module.router)
    app.include_router(invoices_api.router)  # before reporting's /v1/invoices/{id}: `.pdf` routes
    app.include_router(reporting_api.router)
    for bulk_module in (bulk_api, number_blocks_api, payments_api, alerts_api, demo_api):
        app.include_router(bulk_module.router)
    app.include_router(web_router)  # the console and portal pages, over the API above
    return app


def uvicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    """One worker on uvloop and httptools (pinned dependencies); no access log (we log each request).

    No uvicorn proxy headers: `client_ip.TrustedProxies` alone decides whom X-Forwarded-For is
    believed from (uvicorn's default also believed any peer on 127.0.0.1).
    """
    return {
        "host": settings.http_host, "port": settings.http_port, "workers": 1, "loop": "uvloop",
        "http": "httptools", "access_log": False, "log_config": None, "server_header": False,
        "proxy_headers": False,
    }
