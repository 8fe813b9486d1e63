"""Portal sessions: short-lived HS256 tokens scoped to one contact and its customer."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

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
                options={"require": ["sub", "cid", "exp", "aud", "iat"]},
            )
            issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
            return PortalPrincipal(UUID(claims["sub"]), UUID(claims["cid"]), issued)
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
