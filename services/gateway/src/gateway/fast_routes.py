"""The hot card routes and the board served without FastAPI's per-request machinery, when plain.

py-spy on the gateway under `bench/gateway.py` (docs/performance.md, issue 21): FastAPI's
dependency solving, routing and request objects took ~35% of the gateway's CPU per create or
update, and half of a board query's. This layer answers only the success path of `POST
/v1/customers`, `GET` and `PATCH /v1/customers/{id}` and the board's JSON page (`GET
/v1/customers`, its query read by `gateway.fast_board`): a canonical id, one `Authorization`
header whose token is in the token cache with the role's permission, headers FastAPI would
accept, a JSON body or a query the route's model accepts. Anything else (no or unknown token,
a refused role, a bad header, id, body or query, another content type, a repeated header)
goes untouched, its body replayed, to the FastAPI routes: they stay the one definition of the
API (OpenAPI, the role table, every error answer). What the service answers is rendered as
the routes render it (`card_response`, the board's raw page, the error handler).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from shared.contracts.customer import CustomerCreate, CustomerPatch, Subjects
from shared.errors import ServiceError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth.role_table import _routes
from gateway.auth.roles import ROLE_PERMISSIONS, Permission
from gateway.auth.tokens import Principal, hash_token
from gateway.dependencies import COMMAND_ID_MAX, Caller, make_caller, parse_if_match
from gateway.entrypoints import customers
from gateway.errors import service_error_response
from gateway.fast_board import board_query

PREFIX = "/v1/customers"
CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WANTED = frozenset({b"authorization", b"content-type", b"idempotency-key", b"x-audit-reason", b"if-match",
                    b"accept"})
IDEMPOTENCY_KEY_MAX = COMMAND_ID_MAX  # the route's `max_length` (dependencies.caller)
AUDIT_REASON_MAX = 500
Handler = Callable[[Scope, "Replay", Send, dict[bytes, str]], Awaitable[None]]


class Fallback(Exception):
    """Not the plain success path: FastAPI's route answers instead."""


class FastRoutes:
    """ASGI, inside the request context: serves the plain hot requests, hands the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[tuple[str, str], Any] | None = None
        self.served = 0  # requests answered here (the tests check the fast path was taken)

    def _route(self, scope: Scope, method: str, path: str) -> Any:
        """The FastAPI route of a method and template (what the metrics and logs name)."""
        if self._routes is None:
            found = _routes(scope["app"].routes)
            self._routes = {(m, r.path): r for r in found for m in getattr(r, "methods", ())}
        return self._routes[(method, path)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a plain hot request here, anything else through FastAPI."""
        handler = self._handler(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in WANTED:
                if name in headers:
                    await self.app(scope, receive, send)  # a repeated header: FastAPI decides which
                    return
                headers[name] = value.decode("latin-1")
        replay = Replay(receive)
        try:
            await handler(scope, replay, send, headers)
        except Fallback:
            await self.app(scope, replay.again(), send)

    def _handler(self, scope: Scope) -> Handler | None:
        app = scope.get("app")
        if scope.get("root_path") or not isinstance(app, FastAPI) or app.dependency_overrides:
            return None
        method, path = scope["method"], scope["path"]
        if path == PREFIX:
            return {"POST": self._create, "GET": self._board}.get(method)
        if path.startswith(PREFIX + "/") and CANONICAL_ID.fullmatch(path, len(PREFIX) + 1):
            return {"GET": self._get, "PATCH": self._update}.get(method)
        return None

    def _principal(self, scope: Scope, headers: dict[bytes, str], permission: Permission) -> Principal:
        """The cached principal of the bearer token, if it may do this (else FastAPI's answer)."""
        authorization = headers.get(b"authorization")
        scheme, credentials = get_authorization_scheme_param(authorization)
        if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
            raise Fallback
        principal = scope["app"].state.runtime.tokens.cache.get(hash_token(credentials))
        if principal is None or permission not in ROLE_PERMISSIONS[principal.role]:
            raise Fallback
        scope["state"]["principal"] = principal
        return principal

    def _caller(self, scope: Scope, headers: dict[bytes, str]) -> Caller:
        principal = self._principal(scope, headers, Permission.CUSTOMERS_WRITE)
        key, reason = headers.get(b"idempotency-key"), headers.get(b"x-audit-reason")
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            raise Fallback
        if reason is not None and len(reason) > AUDIT_REASON_MAX:
            raise Fallback
        client = scope.get("client")
        ip = client[0] if client else None
        return make_caller(principal, scope["state"]["correlation_id"], ip, key, reason)

    async def _create(self, scope: Scope, receive: Replay, send: Send, headers: dict[bytes, str]) -> None:
        who = self._caller(scope, headers)
        try:
            body = CustomerCreate.model_validate(await _json_body(receive, headers))
        except ValidationError:
            raise Fallback from None
        await self._answer(scope, receive, send, "POST", PREFIX, Subjects.CREATE,
                                  customers.create_command(who, body), who.correlation_id, created=True)

    async def _update(self, scope: Scope, receive: Replay, send: Send, headers: dict[bytes, str]) -> None:
        who = self._caller(scope, headers)
        try:
            version = parse_if_match(headers.get(b"if-match"))
        except ServiceError:
            raise Fallback from None
        try:
            body = CustomerPatch.model_validate(await _json_body(receive, headers))
        except ValidationError:
            raise Fallback from None
        payload = customers.update_command(who, scope["path"][len(PREFIX) + 1:], version, body)
        await self._answer(scope, receive, send, "PATCH", PREFIX + "/{customer_id}", Subjects.UPDATE,
                                  payload, who.correlation_id)

    async def _get(self, scope: Scope, receive: Replay, send: Send, headers: dict[bytes, str]) -> None:
        self._principal(scope, headers, Permission.CUSTOMERS_READ)
        await self._answer(scope, receive, send, "GET", PREFIX + "/{customer_id}", Subjects.GET,
                                  customers.get_query(scope["path"][len(PREFIX) + 1:]),
                                  scope["state"]["correlation_id"])

    async def _board(self, scope: Scope, receive: Replay, send: Send, headers: dict[bytes, str]) -> None:
        self._principal(scope, headers, Permission.CUSTOMERS_READ)
        payload = board_query(scope["query_string"], headers.get(b"accept"))
        if payload is None:
            raise Fallback
        await self._answer(scope, receive, send, "GET", PREFIX, Subjects.LIST, payload,
                           scope["state"]["correlation_id"], page=True)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, method: str, template: str,
                      subject: str, payload: bytes, correlation_id: str, *, created: bool = False,
                      page: bool = False) -> None:
        """Send the request to the customer service; answer as the route does."""
        scope["route"] = self._route(scope, method, template)
        self.served += 1
        try:
            data = await scope["app"].state.runtime.customers.request(
                subject, payload, correlation_id=correlation_id, errors_first=page)  # as the board route
            response: Response = (
                Response(data, media_type="application/json") if page  # as entrypoints.board
                else customers.card_response(data, status_code=201 if created else 200, location=created))
        except ServiceError as exc:
            response = service_error_response(exc)
        await response(scope, receive, send)


async def _json_body(receive: Replay, headers: dict[bytes, str]) -> Any:
    """The whole body as JSON, when sent as `application/json` and parsed as FastAPI would."""
    if headers.get(b"content-type") != "application/json":
        raise Fallback
    body = await receive.read()
    if not body:
        raise Fallback
    try:
        # json.loads as FastAPI's Request.json(): orjson would read an integer past 64 bits as a float
        return json.loads(body)
    except ValueError:
        raise Fallback from None


class Replay:
    """A receive that keeps what it read, to give it again to FastAPI on a fallback."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.messages: list[Message] = []

    async def __call__(self) -> Message:
        """The next message from the server (kept)."""
        message = await self.receive()
        self.messages.append(message)
        return message

    async def read(self) -> bytes:
        """The whole request body; a disconnect in the middle is FastAPI's to answer."""
        chunks = []
        while True:
            message = await self()
            if message["type"] != "http.request":
                raise Fallback
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    def again(self) -> Receive:
        """A receive that gives the kept messages first, then the server's."""
        pending = list(self.messages)

        async def receive() -> Message:
            return pending.pop(0) if pending else await self.receive()

        return receive
