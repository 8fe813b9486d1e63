"""Portal sessions: short-lived HS256 tokens scoped to one contact and its customer."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import jwt
import structlog

log = structlog.get_logger(__name__)

AUDIENCE = "patchbay-portal"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class PortalPrincipal:
    """Who a valid portal session belongs to."""

    contact_id: UUID
    customer_id: UUID
    issued_at: datetime
    session_id: str = ""  # the token's `jti`: what logout revokes
    expires_at: datetime | None = None


def session_key(explicit: str | None, secret_key: str | None) -> bytes:
    """PATCHBAY_PORTAL_SESSION_KEY, else derived from PATCHBAY_SECRET_KEY, else random (one replica only)."""
    if explicit:
        return explicit.encode()
    if secret_key:
        return hashlib.sha256(b"patchbay:portal-sessions:" + secret_key.encode()).digest()
    log.warning("portal_session_key_random", effect="sessions end at restart and work on this replica only")
    return secrets.token_bytes(32)


class PortalSessions:
    """Issues and checks portal session tokens."""

    def __init__(self, key: bytes, ttl_s: float) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, contact_id: str, customer_id: str) -> tuple[str, datetime]:
        """A new token and when it expires."""
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl_s)
        claims = {
            "sub": contact_id,
            "cid": customer_id,
            "aud": AUDIENCE,
            "iat": now.timestamp(),  # with its fraction: a reset in the same second still ends it
            "exp": expires,
            "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), expires

    def check(self, token: str) -> PortalPrincipal | None:
        """The principal of a valid, unexpired token; None otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["sub", "cid", "exp", "aud", "iat", "jti"]},
            )
            issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
            expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
            return PortalPrincipal(
                UUID(claims["sub"]), UUID(claims["cid"]), issued, str(claims["jti"]), expires
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None


class PortalRevocations:
    """Portal sessions ended before their expiry (logout), kept until they would have expired."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def revoke(self, principal: PortalPrincipal) -> None:
        """End this session now."""
        await self.pool.execute(
            "INSERT INTO gateway.revoked_portal_sessions (jti, expires_at) VALUES ($1, $2)"
            " ON CONFLICT (jti) DO NOTHING",
            principal.session_id, principal.expires_at or datetime.now(UTC),
        )
        await self.pool.execute("DELETE FROM gateway.revoked_portal_sessions WHERE expires_at < now()")
        log.info("portal_session_revoked", contact_id=str(principal.contact_id))

    async def revoked(self, principal: PortalPrincipal) -> bool:
        """Whether this session was ended by a logout."""
        return bool(await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM gateway.revoked_portal_sessions WHERE jti = $1)",
            principal.session_id,
        ))
