"""Running a service: its main coroutine on uvloop (less CPU per request here), its lifecycle."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any, Protocol

import asyncpg
import structlog
import uvloop
from nats.aio.client import Client as NatsClient

from shared.ops import readiness, serve_ops

log = structlog.get_logger(__name__)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service until its main coroutine returns."""
    # a request allocates hundreds of short-lived objects: with the default threshold (700)
    # the collector ran ~40 times a second under load, scanning the state caches each time
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()  # what the imports made lives forever: keep it out of every collection
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


class Running(Protocol):
    """What a started service exposes to its lifecycle: its connections, and how to stop it."""

    @property
    def pool(self) -> asyncpg.Pool: ...
    @property
    def nc(self) -> NatsClient: ...
    async def stop(self) -> None: ...


async def serve(name: str, service: Running, ops_port: int | None) -> None:
    """Serve /metrics, /healthz and /readyz, wait for SIGINT/SIGTERM, then stop everything."""
    ops = await serve_ops(name, ops_port, readiness(pool=service.pool, nc=service.nc))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("service_stopping", service=name)
    if ops is not None:
        await ops.stop()
    await service.stop()


STOP_TIMEOUT_S = 10.0


async def cancel_tasks(tasks: list[asyncio.Task[Any]], within_s: float = STOP_TIMEOUT_S) -> None:
    """Cancel the tasks and wait for them, cancelling again those that swallowed it.

    On Python 3.11 `asyncio.wait_for` (used by nats-py's fetch and by our own waits) drops a
    cancellation that arrives as the awaited future completes; the task then loops on. Asking
    again is enough; past `within_s` the rest are logged and left, so a stop never hangs.
    """
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + within_s
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            log.warning("tasks_not_stopped", tasks=sorted(task.get_name() for task in pending))
            return
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.5))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.warning("task_failed_before_stop", task=task.get_name(), error=str(task.exception()))


async def close_pool(pool: asyncpg.Pool, within_s: float = STOP_TIMEOUT_S) -> None:
    """Close the pool, waiting for borrowed connections at most `within_s`, then cut them."""
    try:
        await asyncio.wait_for(pool.close(), within_s)
    except TimeoutError:
        log.warning("pool_close_timed_out", hint="a connection was still in use; closed it")
        pool.terminate()
