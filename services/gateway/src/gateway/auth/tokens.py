"""Operator API tokens in the `gateway` schema: only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import structlog
from shared.errors import ErrorCode, ErrorDetail
from shared.ids import new_id

from gateway.auth.roles import Role
from gateway.errors import ApiError

log = structlog.get_logger(__name__)

PREFIX = "pb_"
BOOTSTRAP_LOCK = "gateway:tokens:bootstrap"
ADMIN_NAME = "admin"


def new_token() -> str:
    """A fresh secret: `pb_` and 32 random bytes, URL-safe."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token (sha256 hex); tokens are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to."""

    token_id: UUID
    name: str
    role: Role


@dataclass(frozen=True)
class TokenRecord:
    """A token as listed (never its secret or hash)."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class TokenCache:
    """Recent lookups by hash for a few seconds; bounded, and cleared on revocation."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token_hash: str) -> Principal | None:
        """The cached principal, unless missing or expired."""
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._entries[token_hash]
            return None
        return hit[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        """Remember a valid token until the TTL passes."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare; a full cache only costs lookups
        self._entries[token_hash] = (time.monotonic() + self.ttl_s, principal)

    def forget(self, token_hash: str) -> None:
        """Drop one token at once (it was revoked or replaced)."""
        self._entries.pop(token_hash, None)


def _record(row: asyncpg.Record) -> TokenRecord:
    return TokenRecord(row["id"], row["name"], Role(row["role"]), row["created_at"], row["revoked_at"])


class TokenStore:
    """Create, list, revoke and authenticate tokens."""

    def __init__(self, pool: asyncpg.Pool, cache: TokenCache) -> None:
        self.pool = pool
        self.cache = cache

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of an active token, or None."""
        token_hash = hash_token(token)
        if (cached := self.cache.get(token_hash)) is not None:
            return cached
        row = await self.pool.fetchrow(
            "SELECT id, name, role FROM gateway.tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
        )
        if row is None:
            return None
        principal = Principal(row["id"], row["name"], Role(row["role"]))
        self.cache.put(token_hash, principal)
        return principal

    async def create(self, *, name: str, role: Role) -> tuple[TokenRecord, str]:
        """Make a token; the secret is returned here and never again."""
        token = new_token()
        try:
            row = await self.pool.fetchrow(
                "INSERT INTO gateway.tokens (id, name, role, token_hash) VALUES ($1, $2, $3, $4)"
                " RETURNING id, name, role, created_at, revoked_at",
                new_id(), name, role.value, hash_token(token),
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(
                ErrorCode.NAME_TAKEN, f"an active token is already named '{name}'",
                [ErrorDetail(field="name", message="already taken by an active token", type="name_taken")],
            ) from None
        assert row is not None
        log.info("token_created", token_id=str(row["id"]), name=name, role=role.value)
        return _record(row), token

    async def list(
        self, *, limit: int, after: UUID | None, include_revoked: bool
    ) -> tuple[list[TokenRecord], UUID | None, int]:
        """One page in creation order (ids are time-ordered), the next cursor, the total."""
        where = "TRUE" if include_revoked else "revoked_at IS NULL"
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM gateway.tokens WHERE {where}")
            rows = await conn.fetch(
                f"SELECT id, name, role, created_at, revoked_at FROM gateway.tokens WHERE {where}"
                " AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
                after, limit + 1,
            )
        items = [_record(r) for r in rows[:limit]]
        next_after = items[-1].id if len(rows) > limit else None
        return items, next_after, int(total)

    async def revoke(self, token_id: UUID) -> TokenRecord:
        """Revoke an active token; it stops working in this process at once."""
        row = await self.pool.fetchrow(
            "UPDATE gateway.tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
            " RETURNING id, name, role, created_at, revoked_at, token_hash",
            token_id,
        )
        if row is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no active token {token_id}")
        self.cache.forget(row["token_hash"])
        log.info("token_revoked", token_id=str(token_id), name=row["name"])
        return _record(row)

    async def ensure_admin(self, token: str) -> str:
        """Make the active token named `admin` an admin with this secret; say what changed.

        A secret that was revoked stays revoked: a restart never brings it back.
        """
        token_hash = hash_token(token)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", BOOTSTRAP_LOCK)
            if await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM gateway.tokens"
                " WHERE token_hash = $1 AND revoked_at IS NOT NULL)",
                token_hash,
            ):
                log.warning("admin_token_revoked_not_restored",
                            fix="set PATCHBAY_ADMIN_TOKEN to a new secret, or unset it")
                return "revoked"
            row = await conn.fetchrow(
                "SELECT id, role, token_hash FROM gateway.tokens"
                " WHERE lower(name) = $1 AND revoked_at IS NULL",
                ADMIN_NAME,
            )
            if row is None:
                await conn.execute(
                    "INSERT INTO gateway.tokens (id, name, role, token_hash) VALUES ($1, $2, 'admin', $3)",
                    new_id(), ADMIN_NAME, token_hash,
                )
                action = "created"
            elif row["token_hash"] != token_hash or row["role"] != Role.ADMIN:
                await conn.execute(
                    "UPDATE gateway.tokens SET token_hash = $2, role = 'admin' WHERE id = $1",
                    row["id"], token_hash,
                )
                self.cache.forget(row["token_hash"])
                action = "replaced"
            else:
                action = "unchanged"
        log.info("admin_token_ensured", action=action)
        return action

    async def ensure_any(self) -> str | None:
        """With no active token at all, create an admin one and return its secret (else None)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", BOOTSTRAP_LOCK)
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM gateway.tokens WHERE revoked_at IS NULL)"):
                return None
            token = new_token()
            await conn.execute(
                "INSERT INTO gateway.tokens (id, name, role, token_hash) VALUES ($1, $2, 'admin', $3)",
                new_id(), ADMIN_NAME, hash_token(token),
            )
        log.info("first_admin_token_created")
        return token
