"""The stack runner's watch over its embedded servers: one that dies is started again on its data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import structlog

log = structlog.get_logger()

CHECK_INTERVAL_S = 0.5
MAX_BACKOFF_S = 30.0


class Server(Protocol):
    """What EmbeddedNats and EmbeddedPostgres have in common."""

    @property
    def pid(self) -> int | None: ...

    def start(self, timeout: float = ...) -> str: ...

    def stop(self, timeout: float = ...) -> None: ...


@dataclass
class Watched:
    """One embedded server, under the name the output uses."""

    name: str
    server: Server
    monitor: str | None = None  # its monitoring endpoint (nats-server's /varz, /jsz, /healthz)
    restarts: int = 0
    _backoff: float = field(default=0.5, repr=False)
    _next_try: float = field(default=0.0, repr=False)


def _say(text: str) -> None:
    print(text, flush=True)


async def watch_servers(
    watched: Sequence[Watched], stop: asyncio.Event, *, say: Callable[[str], None] = _say,
    interval: float = CHECK_INTERVAL_S,
) -> None:
    """Until stop: restart each server found dead, on the same port and data (backoff on failure).

    Restarts run on the calling (main) thread: the servers' parent-death signal is tied to the
    thread that started them, so they must not be started from a worker thread.
    """
    while not stop.is_set():
        for item in watched:
            if item.server.pid is not None or time.monotonic() < item._next_try:
                continue
            say(f"embedded {item.name} died; restarting it on the same data")
            log.warning("embedded server died; restarting", server=item.name)
            try:
                item.server.stop(2.0)  # reap, release its socket dir
                url = item.server.start()
            except Exception as exc:
                item._next_try = time.monotonic() + item._backoff
                say(f"embedded {item.name} failed to start ({exc}); next try in {item._backoff:g} s")
                item._backoff = min(item._backoff * 2, MAX_BACKOFF_S)
                continue
            item.restarts += 1
            item._backoff = 0.5
            say(f"embedded {item.name} restarted (restart {item.restarts}): {url}")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
