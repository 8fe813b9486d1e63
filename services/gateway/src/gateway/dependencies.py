"""FastAPI dependencies: the runtime, the caller's token and role, command metadata."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from shared.errors import ErrorCode, ErrorDetail

from gateway.auth.roles import ROLE_PERMISSIONS, Permission, roles_with
from gateway.auth.tokens import Principal
from gateway.errors import ApiError
from gateway.portal.sessions import AUDIENCE as PORTAL_AUDIENCE
from gateway.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="An operator API token (`pb_...`).")
IF_MATCH = re.compile(r'^\s*(?:W/)?(?:"(\d{1,18})"|(\d{1,18}))\s*$')
CHALLENGE = {"WWW-Authenticate": "Bearer"}
COMMAND_ID_MAX = 200  # `meta.command_id`'s limit (shared.contracts.customer.CommandMeta)


def get_runtime(request: Request) -> Runtime:
    """The runtime that bootstrap put on the app."""
    return cast(Runtime, request.app.state.runtime)


def correlation_id(request: Request) -> str:
    """The request's correlation id (set by the middleware)."""
    return cast(str, request.state.correlation_id)


def _unknown_token(token: str) -> str:
    """Why a bearer token was refused; a portal session token is told where it belongs."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_aud": False})
    except jwt.PyJWTError:
        claims = None
    if isinstance(claims, dict) and claims.get("aud") == PORTAL_AUDIENCE:
        return ("this is a portal session token: it works on /portal/v1 routes only;"
                " /v1 routes take an operator API token (pb_...)")
    return "the token is invalid or revoked"


@functools.cache
def require(permission: Permission, action: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, if its token is valid and its role allows this.

    `action` names what is refused when the permission's name would mislead (a read guarded by a write).
    """

    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise ApiError(ErrorCode.UNAUTHENTICATED,
                           "missing bearer token: send `Authorization: Bearer <token>`", headers=CHALLENGE)
        found = await get_runtime(request).tokens.authenticate(credentials.credentials)
        if found is None:
            raise ApiError(ErrorCode.UNAUTHENTICATED, _unknown_token(credentials.credentials),
                           headers=CHALLENGE)
        request.state.principal = found
        if permission not in ROLE_PERMISSIONS[found.role]:
            allowed = ", ".join(roles_with(permission))
            why = (f"may not {action} (only {allowed})" if action
                   else f"may not do this (needs {permission}: {allowed})")
            raise ApiError(ErrorCode.FORBIDDEN, f"role '{found.role}' {why}")
        return found

    return principal


def parse_if_match(value: str | None) -> int | None:
    """`3`, `"3"` or `W/"3"` -> 3; absent or `*` -> None."""
    if value is None or value.strip() in ("", "*"):
        return None
    match = IF_MATCH.match(value)
    if match is None:
        raise ApiError(ErrorCode.VALIDATION, "If-Match must be a version number, e.g. \"3\"",
                       [ErrorDetail(field="If-Match", message="not a version number", type="if_match")])
    return int(match.group(1) or match.group(2))


async def expected_version(
    if_match: Annotated[str | None, Header(
        alias="If-Match", description="The version you last read (`3`, `\"3\"` or `W/\"3\"`).")] = None,
) -> int | None:
    """The version the caller expects (412 when it is not the current one)."""
    return parse_if_match(if_match)


def scoped_command_id(principal_id: str, key: str | None) -> str | None:
    """The command id of an Idempotency-Key: the caller's own, so two callers' keys never meet.

    `<principal>:<key>` while it fits `meta.command_id`, else `<principal>#<sha256 of the key>`
    (a principal id, a uuid, holds neither separator, so the two forms never collide).
    """
    if key is None:
        return None
    if len(principal_id) + 1 + len(key) <= COMMAND_ID_MAX:
        return f"{principal_id}:{key}"
    return f"{principal_id}#{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class Caller:
    """Who calls, with the command metadata to send along."""

    principal: Principal
    correlation_id: str
    ip: str | None
    command_id: str | None  # the Idempotency-Key scoped to the token (`scoped_command_id`)
    reason: str | None
    idempotency_key: str | None = None  # as the client sent it

    def meta(self, reason: str | None = None) -> dict[str, Any]:
        """`CommandMeta` as JSON; a reason given in the body wins over the header."""
        return {
            "command_id": self.command_id,
            "actor": {"kind": "operator", "id": str(self.principal.token_id),
                      "name": self.principal.name, "ip": self.ip},
            "reason": reason or self.reason,
            "correlation_id": self.correlation_id,
        }


@functools.cache
def caller(permission: Permission) -> Callable[..., Awaitable[Caller]]:
    """A dependency for commands: the authorized principal plus idempotency key and reason."""

    authorized = Depends(require(permission))  # a default, not in the (string) annotation

    async def dependency(
        request: Request,
        principal: Principal = authorized,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=200,
            description="Retrying with the same key (and token) returns the first answer; nothing"
            " happens twice. A key reused for a different customer command is 409.",
        )] = None,
        audit_reason: Annotated[str | None, Header(
            alias="X-Audit-Reason", max_length=500,
            description="Why (kept in the audit log; required when the audit setting says so).",
        )] = None,
    ) -> Caller:
        ip = request.client.host if request.client else None
        return make_caller(principal, correlation_id(request), ip, idempotency_key, audit_reason)

    return dependency


def make_caller(
    principal: Principal, correlation_id: str, ip: str | None, idempotency_key: str | None,
    audit_reason: str | None,
) -> Caller:
    """The caller of a command, from its validated headers (`caller`, `gateway.fast_routes`)."""
    reason = audit_reason.strip() if audit_reason else None
    return Caller(
        principal=principal, correlation_id=correlation_id, ip=ip,
        command_id=scoped_command_id(str(principal.token_id), idempotency_key),
        reason=reason or None, idempotency_key=idempotency_key,
    )
