"""Request/reply on core NATS: a route table served by nats-py, documented by FastStream.

Why not FastStream subscribers on this path: measured here, a FastStream echo answers
~7k/s with one worker, ~2k/s with `max_workers=128` or with a context parameter such as
`NatsMessage` (resolved through a thread pool), while nats-py answers ~24k/s. Commands
need many requests in flight at once (that is what lets them share one append), so the
routes are served by nats-py directly; `shared.asyncapi` turns the same table into the
AsyncAPI document through FastStream, so the docs cannot drift from what is served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from shared.bus_signing import command_check
from shared.errors import ErrorCode, ServiceError, details_from_pydantic
from shared.logging import CORRELATION_HEADER, bind_from_headers
from shared.ops import REQUEST_SECONDS, REQUESTS
from shared.unavailable import unavailable_reason

log = structlog.get_logger(__name__)

Handler = Callable[[Any], Awaitable[bytes]]


class Respond(Protocol):
    """The reply of one queued request: its worker awaits it once with the reply."""

    correlation_id: str | None  # the request's correlation header, if it had one

    async def __call__(self, reply: bytes) -> None: ...


# takes a valid request and `respond`, which its worker awaits once with the reply (no await here)
Enqueue = Callable[[Any, Respond], None]


@dataclass(frozen=True)
class Route:
    """One request/reply subject: what it takes, what it answers, who handles it."""

    subject: str
    request: type[BaseModel]
    reply: type[BaseModel] | None
    handler: Handler
    description: str = ""
    # instead of a task awaiting `handler` per request: the request is checked, validated and
    # queued in nats-py's callback, and the queue's worker sends the reply (ADR 0028)
    enqueue: Enqueue | None = None


def error_bytes(err: ServiceError) -> bytes:
    """An error reply, serialized."""
    return err.to_reply().model_dump_json().encode()


def validation_error(exc: ValidationError) -> ServiceError:
    """A pydantic failure as a typed validation error naming each field."""
    try:
        errors = exc.errors(include_input=False, include_url=False)
    except Exception:
        errors = []
    if errors and errors[0].get("type") == "json_invalid":
        return ServiceError(ErrorCode.VALIDATION, "the request body is not valid JSON")
    return ServiceError(ErrorCode.VALIDATION, "the request is not valid", details_from_pydantic(errors))


class RpcServer:
    """Serves routes on one NATS connection, in a queue group, many requests at once."""

    def __init__(self, nc: NatsClient, routes: list[Route], *, queue: str, max_in_flight: int = 1024) -> None:
        self.nc = nc
        self.routes = routes
        self.queue = queue
        self._slots = asyncio.Semaphore(max_in_flight)
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.handled = 0
        self.failed = 0
        self._own_seed: str | None = getattr(nc, "signing_seed", None)  # checks commands' MACs
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}  # metric children: ~2 µs a labels()
        self._queued = 0  # requests handed to a route's queue, not answered yet
        self._answered = asyncio.Event()  # set whenever none is queued
        self._answered.set()

    async def start(self) -> None:
        """Subscribe every route and make sure the server knows before returning."""
        for route in self.routes:
            self._subs.append(
                await self.nc.subscribe(route.subject, queue=self.queue, cb=self._callback(route))
            )
        await self.nc.flush()

    async def stop(self) -> None:
        """Stop taking requests and let those in flight answer."""
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self._queued:
            try:
                await asyncio.wait_for(self._answered.wait(), timeout=10)
            except TimeoutError:
                log.warning("requests_unanswered_at_stop", queued=self._queued)

    def _callback(self, route: Route) -> Callable[[Msg], Awaitable[None]]:
        if route.enqueue is not None:
            enqueue = route.enqueue

            async def on_queued(msg: Msg) -> None:
                # nats-py awaits callbacks one by one: this one never waits, but for a free slot
                await self._slots.acquire()
                started = time.perf_counter()
                try:
                    request = self._request(route, msg)
                    # the correlation id as the log context has it (bind_from_headers), read at once
                    correlation = (msg.headers.get(CORRELATION_HEADER) or None) if msg.headers else None
                    enqueue(request, _Reply(self, route, msg.reply, started, correlation))
                except Exception as exc:
                    reply, outcome = self._failure(route, exc)
                    self._finish(route, outcome, started)
                    self._slots.release()
                    await self._send(route, msg.reply, reply)
                    return
                self._queued += 1
                self._answered.clear()

            return on_queued

        async def on_message(msg: Msg) -> None:
            # nats-py awaits callbacks one by one: hand off at once so requests overlap
            await self._slots.acquire()
            task = asyncio.create_task(self._serve(route, msg))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return on_message

    def _metrics(self, subject: str, outcome: str) -> tuple[Any, Any]:
        """The request counter and duration histogram of a subject and outcome: labels() once each."""
        found = self._children.get((subject, outcome))
        if found is None:
            found = self._children[(subject, outcome)] = (
                REQUESTS.labels(subject, outcome), REQUEST_SECONDS.labels(subject))
        return found

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    def _request(self, route: Route, msg: Msg) -> Any:
        """The request of a message whose sender may send it: refused (forbidden) or validated."""
        bind_from_headers(msg.headers)
        if (why := command_check().refusal(msg.subject, msg.data, msg.headers,
                                           own_seed=self._own_seed)) is not None:
            raise ServiceError(ErrorCode.FORBIDDEN, why)
        return route.request.model_validate_json(msg.data or b"{}")

    def _failure(self, route: Route, exc: Exception) -> tuple[bytes, str]:
        """The error reply to a request that raised, and its outcome for the metrics."""
        if isinstance(exc, ValidationError):
            return error_bytes(validation_error(exc)), "invalid"
        if isinstance(exc, ServiceError):
            return error_bytes(exc), exc.code
        if (away := unavailable_reason(exc)) is not None:
            log.warning("request_unavailable", subject=route.subject, away=away, error=repr(exc))
            away_error = ServiceError(ErrorCode.UNAVAILABLE, f"{away} is unavailable; retry")
            return error_bytes(away_error), ErrorCode.UNAVAILABLE
        self.failed += 1
        log.exception("request_failed", subject=route.subject, error=str(exc))
        internal = ServiceError(ErrorCode.INTERNAL, "internal error; it has been logged")
        return error_bytes(internal), "internal_error"

    def _finish(self, route: Route, outcome: str, started: float) -> None:
        self.handled += 1
        counter, seconds = self._metrics(route.subject, outcome)
        counter.inc()
        seconds.observe(time.perf_counter() - started)

    async def _send(self, route: Route, reply_to: str, reply: bytes) -> None:
        if reply_to:
            try:
                await self.nc.publish(reply_to, reply)
            except Exception as exc:  # the connection is gone; the caller will time out and retry
                log.warning("reply_failed", subject=route.subject, error=str(exc))

    async def _serve(self, route: Route, msg: Msg) -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            reply = await route.handler(self._request(route, msg))
        except Exception as exc:
            reply, outcome = self._failure(route, exc)
        self._finish(route, outcome, started)
        await self._send(route, msg.reply, reply)

    def _unqueued(self) -> None:
        self._queued -= 1
        self._slots.release()
        if not self._queued:
            self._answered.set()


class _Reply:
    """The answer of one queued request: its worker awaits it once with the reply."""

    __slots__ = ("correlation_id", "reply_to", "route", "server", "started")

    def __init__(self, server: RpcServer, route: Route, reply_to: str, started: float,
                 correlation_id: str | None = None) -> None:
        self.server, self.route, self.reply_to, self.started = server, route, reply_to, started
        self.correlation_id = correlation_id

    async def __call__(self, reply: bytes) -> None:
        server = self.server
        server._unqueued()
        outcome = outcome_of(reply)
        if outcome == ErrorCode.INTERNAL:
            server.failed += 1
        server._finish(self.route, outcome, self.started)
        await server._send(self.route, self.reply_to, reply)


_ERROR_HEAD = b'{"error":{"code":"'  # how error_bytes begins


def outcome_of(reply: bytes) -> str:
    """A reply's outcome for the metrics: "ok", or the code of an error reply made by error_bytes."""
    if not reply.startswith(_ERROR_HEAD):
        return "ok"
    return reply[len(_ERROR_HEAD):reply.find(b'"', len(_ERROR_HEAD))].decode()


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return orjson.dumps(value, default=str)
