"""Per-request context: correlation id, body size limit, one log line, last-resort 500."""

from __future__ import annotations

import functools
import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from shared.errors import ErrorCode
from shared.unavailable import unavailable_reason
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PAYLOAD_TOO_LARGE, error_response, unavailable_response

CORRELATION_HEADERS = (b"x-correlation-id", b"x-request-id")
# a client's id is taken only if it is safe to echo in headers and logs
SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# labelled by route template (never the raw path: ids would make a series per customer)
HTTP_REQUESTS = Counter(
    "patchbay_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "patchbay_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)


@functools.cache
def _series(method: str, route: str, status: int | None) -> tuple[Any, Any]:
    """The counter and histogram children of one kind of answer (`labels()` takes a lock each time)."""
    return HTTP_REQUESTS.labels(method, route, str(status)), HTTP_SECONDS.labels(method, route)


def correlation_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Correlation-Id / X-Request-Id when it is sane, else a new uuid."""
    for wanted in CORRELATION_HEADERS:
        for name, value in reversed(headers):  # the last of a repeated header, as dict() had it
            if name == wanted:
                text = value.decode("latin-1").strip()
                if SAFE_ID.match(text):
                    return text
                break
    return str(uuid.uuid4())


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> Response:
    """413 in the one error shape (made only when needed: building it cost 3% of a request's CPU)."""
    return error_response(PAYLOAD_TOO_LARGE, f"the body is larger than {limit} bytes")


class BodyTooLarge(Exception):
    """The client sent more than the route takes; the request is answered 413."""


class LimitedReceive:
    """Counts the body as it arrives and stops the read past the limit (chunked or not)."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        """The next message; raises BodyTooLarge once the body passes the limit."""
        if self.exceeded:
            raise BodyTooLarge()
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise BodyTooLarge()
        return message


class RequestContextMiddleware:
    """Pure ASGI (no per-request task): cheap enough for the hot read path."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, body_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # paths that take larger bodies (bulk upload), each checking its own limit while reading
        self.body_limits = body_limits or {}
        self.log = structlog.get_logger("gateway.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one request with its correlation id bound and logged."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        cid = correlation_id_from(headers)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["correlation_id"] = cid
        started = time.perf_counter()
        sent: dict[str, Any] = {"status": None}

        limit = self.body_limits.get(scope["path"], self.max_body_bytes)
        body = LimitedReceive(receive, limit)

        async def send_with_id(message: Message) -> None:
            if body.exceeded and not sent.get("cut"):
                return  # whatever the app makes of a cut body, the answer is the 413 below
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", cid.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            try:
                length = _content_length(headers)
                if length is not None and length > limit:
                    await _too_large(limit)(scope, receive, send_with_id)
                else:
                    await self.app(scope, body, send_with_id)
                    if body.exceeded:
                        raise BodyTooLarge()
            except Exception as exc:
                if body.exceeded and sent["status"] is None:  # the read was cut: 413, not a failure
                    sent["cut"] = True
                    await _too_large(limit)(scope, receive, send_with_id)
                    return
                if isinstance(exc, BodyTooLarge):
                    raise  # cut mid-answer: the server must drop the connection
                away = unavailable_reason(exc)  # PostgreSQL or NATS down: 503, not a bug
                if away is None:
                    self.log.exception("request_failed", method=scope["method"], path=scope["path"])
                else:
                    self.log.warning("request_unavailable", path=scope["path"], away=away, error=repr(exc))
                if sent["status"] is not None:
                    raise  # mid-stream: the server must cut the connection
                sent["status"] = 500 if away is None else 503
                reply = (error_response(ErrorCode.INTERNAL, "internal error; it has been logged")
                         if away is None else unavailable_response(away))
                await reply(scope, receive, send_with_id)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                counted, timed = _series(scope["method"], route, sent["status"])
                counted.inc()
                timed.observe(time.perf_counter() - started)
                principal = state.get("principal")
                self.log.info(
                    "request", method=scope["method"], path=scope["path"], status=sent["status"],
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    actor=getattr(principal, "name", None), correlation_id=cid,
                )
