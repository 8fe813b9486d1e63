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
    """Who a valid token belongs to (a console session acts as its parent token)."""

    token_id: UUID
    name: str
    role: Role
    session_id: UUID | None = None  # the console session token, when signed in through one


@dataclass(frozen=True)
class TokenRecord:
    """A token as listed (never its secret or hash)."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None


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
    return TokenRecord(row["id"], row["name"], Role(row["role"]), row["created_at"], row["revoked_at"],
                       row["expires_at"])


# an active token: not revoked, not expired, and (a session) its parent neither
_ACTIVE = """
SELECT t.id, t.parent_id, coalesce(p.name, t.name) AS name, coalesce(p.role, t.role) AS role
FROM gateway.tokens t LEFT JOIN gateway.tokens p ON p.id = t.parent_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
  AND (t.parent_id IS NULL OR (p.revoked_at IS NULL AND (p.expires_at IS NULL OR p.expires_at > now())))
"""
_COLUMNS = "id, name, role, created_at, revoked_at, expires_at"
SESSION_PREFIX = "session:"


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
        row = await self.pool.fetchrow(_ACTIVE, token_hash)
        if row is None:
            return None
        if row["parent_id"] is None:
            principal = Principal(row["id"], row["name"], Role(row["role"]))
        else:
            principal = Principal(row["parent_id"], row["name"], Role(row["role"]), session_id=row["id"])
        self.cache.put(token_hash, principal)
        return principal

    async def create(
        self, *, name: str, role: Role, expires_at: datetime | None = None
    ) -> tuple[TokenRecord, str]:
        """Make a token (optionally expiring); the secret is returned here and never again."""
        token = new_token()
        try:
            row = await self.pool.fetchrow(
                "INSERT INTO gateway.tokens (id, name, role, token_hash, expires_at)"
                f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
                new_id(), name, role.value, hash_token(token), expires_at,
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
        where = "parent_id IS NULL" + ("" if include_revoked else " AND revoked_at IS NULL")
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM gateway.tokens WHERE {where}")
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM gateway.tokens WHERE {where}"
                " AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
                after, limit + 1,
            )
        items = [_record(r) for r in rows[:limit]]
        next_after = items[-1].id if len(rows) > limit else None
        return items, next_after, int(total)

    async def revoke(self, token_id: UUID) -> TokenRecord:
        """Revoke an active token; it stops working in this process at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE gateway.tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
                f" AND parent_id IS NULL RETURNING {_COLUMNS}, token_hash",
                token_id,
            )
            if row is None:
                raise ApiError(ErrorCode.NOT_FOUND, f"no active token {token_id}")
            sessions = await conn.fetch(  # its console sessions end with it
                "UPDATE gateway.tokens SET revoked_at = now() WHERE parent_id = $1 AND revoked_at IS NULL"
                " RETURNING token_hash",
                token_id,
            )
        for hashed in (row["token_hash"], *(s["token_hash"] for s in sessions)):
            self.cache.forget(hashed)
        log.info("token_revoked", token_id=str(token_id), name=row["name"], sessions=len(sessions))
        return _record(row)

    async def open_session(self, parent: Principal, expires_at: datetime) -> str:
        """A console session token acting for a token until it expires, is revoked, or its parent is."""
        token = new_token()
        await self.pool.execute(  # sessions over a day past their end are of no further use
            "DELETE FROM gateway.tokens WHERE parent_id IS NOT NULL"
            " AND least(revoked_at, expires_at) < now() - interval '1 day'"
        )
        await self.pool.execute(
            "INSERT INTO gateway.tokens (id, name, role, token_hash, expires_at, parent_id)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            new_id(), f"{SESSION_PREFIX}{new_id()}", parent.role.value, hash_token(token), expires_at,
            parent.token_id,
        )
        log.info("console_session_opened", token_id=str(parent.token_id))
        return token

    async def close_session(self, token: str) -> bool:
        """Revoke a console session token (never a parent token); whether one was open."""
        token_hash = hash_token(token)
        closed = await self.pool.fetchval(
            "UPDATE gateway.tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL"
            " AND parent_id IS NOT NULL RETURNING parent_id",
            token_hash,
        )
        self.cache.forget(token_hash)
        if closed is not None:
            log.info("console_session_closed", token_id=str(closed))
        return closed is not None

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
            if await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM gateway.tokens WHERE revoked_at IS NULL AND parent_id IS NULL)"
            ):
                return None
            token = new_token()
            await conn.execute(
                "INSERT INTO gateway.tokens (id, name, role, token_hash) VALUES ($1, $2, 'admin', $3)",
                new_id(), ADMIN_NAME, hash_token(token),
            )
        log.info("first_admin_token_created")
        return token
