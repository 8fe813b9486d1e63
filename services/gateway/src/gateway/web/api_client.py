"""The pages' way into the HTTP API: the JSON routes called in-process with the browser's token.

Going through the API itself (not around it) means every page gets exactly the API's
authentication, roles, validation and error shape, and the audit log names the operator
and the browser's address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

BASE_URL = "http://gateway.internal"
TIMEOUT_S = 120.0  # the API's own timeouts answer first; this only guards against a hang


class SignInRequired(Exception):
    """The API answered 401: the session's token is missing, unknown or revoked."""


@dataclass
class ApiResult:
    """One answer of the API: status, parsed JSON (or None), headers, raw bytes."""

    status: int
    body: Any
    headers: httpx.Headers
    content: bytes = b""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        """The `error` object of a failure (empty on success)."""
        if self.ok or not isinstance(self.body, dict):
            return {}
        err = self.body.get("error")
        return err if isinstance(err, dict) else {"code": "error", "message": str(self.body)}

    @property
    def code(self) -> str | None:
        """The error code of a failure."""
        return self.error.get("code")

    @property
    def message(self) -> str:
        """The error message of a failure."""
        return str(self.error.get("message", ""))


@dataclass
class Api:
    """Calls the gateway's own routes in-process as one bearer (operator token or portal session)."""

    request: Request
    token: str | None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def _client(self) -> httpx.AsyncClient:
        client = self.request.client
        peer = (client.host, client.port) if client else ("127.0.0.1", 0)
        transport = httpx.ASGITransport(app=self.request.app, raise_app_exceptions=False, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=TIMEOUT_S)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        allow_unauthenticated: bool = False,
    ) -> ApiResult:
        """One request; 401 raises SignInRequired unless the caller handles it."""
        sent = {**self.extra_headers, **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        cid = getattr(self.request.state, "correlation_id", None)
        if cid:
            sent["X-Correlation-Id"] = cid
        async with self._client() as client:
            reply = await client.request(method, path, params=params, json=json, content=content,
                                         headers=sent)
        body: Any = None
        if "json" in reply.headers.get("content-type", ""):
            try:
                body = reply.json()
            except ValueError:
                body = None
        result = ApiResult(reply.status_code, body, reply.headers, reply.content)
        if result.status == 401 and not allow_unauthenticated:
            raise SignInRequired(result.message)
        return result

    async def get(self, path: str, **kwargs: Any) -> ApiResult:
        """GET."""
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> ApiResult:
        """POST."""
        return await self.call("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> ApiResult:
        """PATCH."""
        return await self.call("PATCH", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> ApiResult:
        """PUT."""
        return await self.call("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> ApiResult:
        """DELETE."""
        return await self.call("DELETE", path, **kwargs)

    async def has_route(self, method: str, path_template: str) -> bool:
        """Whether the app serves a route (pages for APIs that are still landing check this)."""
        return route_exists(self.request, method, path_template)


def route_exists(request: Request, method: str, path_template: str) -> bool:
    """Whether the API serves a route with this path template and method (by its OpenAPI document,
    which FastAPI builds once and caches; the router's own route list is not public)."""
    paths = request.app.openapi().get("paths", {})
    return method.lower() in paths.get(path_template, {})
