"""Queued routes (`Route.enqueue`): the worker answers; refusals and errors are those of a handler route."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from devtools.testing.waiting import holds_for, wait_for
from nats.aio.client import Client as NatsClient
from shared.contracts.base import Strict
from shared.rpc import Respond, Route, RpcServer

pytestmark = pytest.mark.servers


class Ask(Strict):
    """A request naming its actor, as commands do."""

    n: int
    meta: dict[str, Any] = {}


class Worker:
    """A queue answered in batches by one task, as the customer service's command worker does."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Ask, Respond]] = asyncio.Queue()
        self.release = asyncio.Event()
        self.release.set()
        self.handler_calls = 0

    def enqueue(self, body: Ask, respond: Respond) -> None:
        self.queue.put_nowait((body, respond))

    async def handler(self, body: Ask) -> bytes:
        self.handler_calls += 1
        return orjson.dumps({"n": body.n * 2})

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await self.release.wait()
            for body, respond in batch:
                await respond(orjson.dumps({"n": body.n * 2}))


async def _served(nats: NatsClient, worker: Worker) -> tuple[RpcServer, str, str]:
    tag = uuid.uuid4().hex[:8]
    queued, plain = f"rpcq{tag}.cmd.ask", f"rpcp{tag}.cmd.ask"
    server = RpcServer(nats, [Route(queued, Ask, None, worker.handler, "queued", worker.enqueue),
                              Route(plain, Ask, None, worker.handler, "a task each")], queue=f"q{tag}")
    await server.start()
    return server, queued, plain


async def _unsigned(nats: NatsClient, subject: str, payload: bytes) -> bytes:
    """A request sent without the signature headers (`publish`, not the signing `request`)."""
    inbox = nats.new_inbox()
    sub = await nats.subscribe(inbox, max_msgs=1)
    await nats.publish(subject, payload, reply=inbox)
    msg = await sub.next_msg(timeout=5)
    return bytes(msg.data)


async def test_the_worker_answers_many_at_once(nats: NatsClient) -> None:
    worker = Worker()
    task = asyncio.create_task(worker.run())
    server, queued, _ = await _served(nats, worker)
    try:
        replies = await asyncio.gather(*[nats.request(queued, orjson.dumps({"n": i}), timeout=5)
                                         for i in range(50)])
        assert [orjson.loads(r.data) for r in replies] == [{"n": 2 * i} for i in range(50)]
        assert worker.handler_calls == 0
        assert server.handled == 50
    finally:
        await server.stop()
        task.cancel()


@pytest.mark.parametrize("payload", [
    b"{not json", b"[]", b'{"n": "x"}', b'{"n": 1, "extra": 2}', b'{"n": "a\\u0000"}',
    b'{"n": 1, "meta": {"actor": {"kind": "operator", "id": "x", "name": "x"}}}',  # unsigned: forbidden
])
async def test_refusals_are_those_of_a_handler_route(nats: NatsClient, payload: bytes) -> None:
    worker = Worker()
    task = asyncio.create_task(worker.run())
    server, queued, plain = await _served(nats, worker)
    try:
        from_queue = await _unsigned(nats, queued, payload)
        assert b'"error"' in from_queue
        assert from_queue == await _unsigned(nats, plain, payload)
        assert worker.queue.empty() and worker.handler_calls == 0
    finally:
        await server.stop()
        task.cancel()


async def test_stop_waits_for_queued_requests(nats: NatsClient) -> None:
    worker = Worker()
    worker.release.clear()
    task = asyncio.create_task(worker.run())
    server, queued, _ = await _served(nats, worker)
    try:
        asked = asyncio.create_task(nats.request(queued, b'{"n": 21}', timeout=5))
        await wait_for(lambda: server._queued == 1, timeout=5)
        stopping = asyncio.create_task(server.stop())
        await holds_for(lambda: not stopping.done(), 0.2, "the request queued is not answered yet")
        worker.release.set()
        await asyncio.wait_for(stopping, timeout=5)
        assert orjson.loads((await asked).data) == {"n": 42}
    finally:
        task.cancel()


async def test_an_error_answered_by_the_worker_is_counted_under_its_code(nats: NatsClient) -> None:
    from shared.errors import ErrorCode, ServiceError
    from shared.ops import REQUESTS
    from shared.rpc import error_bytes

    server, queued, _ = await _served(nats, worker := Worker())
    errors = {1: ServiceError(ErrorCode.CONFLICT, "busy"), 2: ServiceError(ErrorCode.INTERNAL, "boom")}

    async def answer() -> None:
        for _ in range(3):
            body, respond = await worker.queue.get()
            await respond(error_bytes(errors[body.n]) if body.n in errors else orjson.dumps({"n": body.n}))

    def counted(outcome: str) -> float:
        return REQUESTS.labels(queued, outcome)._value.get()

    task = asyncio.create_task(answer())
    try:
        for n in (1, 2, 3):
            await nats.request(queued, orjson.dumps({"n": n}), timeout=5)
        assert (counted("conflict"), counted("internal_error"), counted("ok")) == (1, 1, 1)
        assert server.failed == 1
    finally:
        await server.stop()
        task.cancel()


async def test_a_queued_request_s_reply_carries_its_correlation_header(nats: NatsClient) -> None:
    from shared.logging import CORRELATION_HEADER

    seen: list[str | None] = []
    worker = Worker()
    enqueue = worker.enqueue

    def remember(body: Ask, respond: Respond) -> None:
        seen.append(respond.correlation_id)
        enqueue(body, respond)

    worker.enqueue = remember  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run())
    server, queued, _ = await _served(nats, worker)
    try:
        await nats.request(queued, orjson.dumps({"n": 1}), timeout=5, headers={CORRELATION_HEADER: "corr-7"})
        await nats.request(queued, orjson.dumps({"n": 2}), timeout=5)
        assert seen == ["corr-7", None]
    finally:
        await server.stop()
        task.cancel()
