"""What a running gateway holds: built by `bootstrap`, reached by routes through the request."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from nats.aio.client import Client as NatsClient
from shared.runtime import close_pool
from shared.service_runtime import close_nats

from gateway.auth.tokens import TokenStore
from gateway.portal.login_guard import LoginSlots
from gateway.portal.rate_limit import RateLimiter
from gateway.portal.sessions import PortalRevocations, PortalSessions
from gateway.service_client import ServiceClient
from gateway.settings import GatewaySettings


@dataclass
class PortalKit:
    """What the portal routes need: sessions and rate limits."""

    sessions: PortalSessions
    limiter: RateLimiter
    slots: LoginSlots = field(default_factory=lambda: LoginSlots(16))
    revocations: PortalRevocations | None = None  # sessions ended by logout


@dataclass
class Runtime:
    """Connections and the objects built on them."""

    settings: GatewaySettings
    pool: asyncpg.Pool
    nc: NatsClient
    tokens: TokenStore
    customers: ServiceClient
    verification: ServiceClient | None = None
    portal: PortalKit | None = None

    async def stop(self) -> None:
        """Close NATS (finishing in-flight requests) and the database pool, each bounded."""
        await close_nats(self.nc, drain=True)
        await close_pool(self.pool)
