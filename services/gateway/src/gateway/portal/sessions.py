"""Portal sessions: short-lived HS256 tokens scoped to one contact and its customer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import jwt
import structlog
from shared.keys import KeyRing, derive, key_id, legacy_digest

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


@dataclass(frozen=True)
class SessionKeys:
    """The key that signs new portal tokens (with its id), and every key that still verifies."""

    kid: str
    key: bytes
    by_kid: dict[str, bytes]
    legacy: tuple[bytes, ...] = ()  # tokens from before key ids (no `kid` header)


def session_key(explicit: str | None, secret_key: str | None, previous: str | None = None) -> SessionKeys:
    """PATCHBAY_PORTAL_SESSION_KEY, else the `portal-sessions` key of PATCHBAY_SECRET_KEY (HKDF; older
    secrets in PATCHBAY_SECRET_KEY_PREVIOUS still verify), else random (one replica only)."""
    if explicit:
        return SessionKeys("explicit", explicit.encode(), {"explicit": explicit.encode()})
    if secret_key:
        ring = KeyRing.of(secret_key, previous)
        kid, key = ring.current_key("portal-sessions")
        by_kid = {key_id(s): derive(s, "portal-sessions") for s in ring.secrets}
        return SessionKeys(kid, key, by_kid, tuple(legacy_digest(s, "portal-sessions") for s in ring.secrets))
    log.warning("portal_session_key_random", effect="sessions end at restart and work on this replica only")
    key = secrets.token_bytes(32)
    return SessionKeys("random", key, {"random": key})


class PortalSessions:
    """Issues and checks portal session tokens."""

    def __init__(self, keys: SessionKeys | bytes, ttl_s: float) -> None:
        self._keys = keys if isinstance(keys, SessionKeys) else SessionKeys("k", keys, {"k": keys})
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
        token = jwt.encode(claims, self._keys.key, algorithm=ALGORITHM, headers={"kid": self._keys.kid})
        return token, expires

    def check(self, token: str) -> PortalPrincipal | None:
        """The principal of a valid, unexpired token; None otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid is None:  # issued before key ids
                claims = self._decode(token, self._keys.legacy)
            else:
                claims = self._decode(token, [self._keys.by_kid[kid]] if kid in self._keys.by_kid else [])
            issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
            expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
            return PortalPrincipal(
                UUID(claims["sub"]), UUID(claims["cid"]), issued, str(claims["jti"]), expires
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None

    @staticmethod
    def _decode(token: str, keys: tuple[bytes, ...] | list[bytes]) -> dict[str, Any]:
        for key in keys:
            try:
                return dict(jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    options={"require": ["sub", "cid", "exp", "aud", "iat", "jti"]},
                ))
            except jwt.InvalidSignatureError:
                continue
        raise jwt.InvalidTokenError("no configured key verifies this token")


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
