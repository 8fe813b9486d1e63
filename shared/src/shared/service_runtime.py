"""One start-up for every service: settings -> migrate -> pool -> connect (as itself) -> serve -> stop.

A bootstrap describes its service once (`Plumbing`), opens a `ServiceRuntime` with it, builds
its own objects on the runtime's pool and NATS connection, registers what must stop first (its
request/reply server) and what must be settled after its tasks (leases, journals), spawns its
tasks, and hands the service to `run_service`. The stop order is the same everywhere: intake,
tasks (bounded, `cancel_tasks`), after-task clean-ups, NATS, the pool (bounded, `close_pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from shared.bus import client_options, new_client
from shared.db import create_pool
from shared.logging import configure_logging
from shared.migrations import migrate
from shared.runtime import Running, cancel_tasks, close_pool, serve
from shared.settings import CommonSettings

Step = Callable[[], Awaitable[None]]
S = TypeVar("S", bound=CommonSettings)


@dataclass(frozen=True)
class Plumbing:
    """How one service opens and closes its connections."""

    name: str
    schema: str
    migrations: Path
    pool_min: int = 2
    search_path: bool = True  # pooled connections see the service's schema first
    keep_session: bool = False  # skip asyncpg's reset query on release (shared.db.create_pool)
    nats_name: str | None = None  # the client name the NATS server shows
    reconnect_time_wait_s: float = 0.5
    # a connection that stopped answering (half-open after a cut, a client no longer reading) is
    # dropped and made again once three pings go unanswered: 30-45 s, not nats-py's 4-6 min
    ping_interval_s: int = 15
    drain_on_stop: bool = True  # drain NATS (bounded) at stop; else flush and close


async def open_pool(plumbing: Plumbing, dsn: str, max_size: int) -> asyncpg.Pool:
    """The service's pool, as its plumbing says."""
    if plumbing.keep_session:
        return await create_pool(dsn, plumbing.schema, min_size=plumbing.pool_min, max_size=max_size)
    options: dict[str, Any] = {}
    if plumbing.search_path:
        options["server_settings"] = {"search_path": plumbing.schema}
    pool = await asyncpg.create_pool(dsn, min_size=plumbing.pool_min, max_size=max_size, **options)
    assert pool is not None
    return pool


async def close_nats(nc: NatsClient, *, drain: bool, within_s: float = 5.0) -> None:
    """Drain within `within_s` (else close), or flush briefly and close.

    Drain suits services whose subscriptions are all push (in-flight requests finish); with a
    pull subscription whose consumer task is gone, drain would wait for messages nobody reads.
    """
    if drain:
        try:
            await asyncio.wait_for(nc.drain(), within_s)
        except Exception:
            await nc.close()
        return
    with contextlib.suppress(Exception):
        await nc.flush(timeout=2)
    with contextlib.suppress(Exception):
        await nc.close()


@dataclass
class ServiceRuntime:
    """A started service's connections and tasks, and its stop in one fixed order."""

    plumbing: Plumbing
    pool: asyncpg.Pool
    nc: NatsClient
    js: JetStreamContext
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _intake: list[Step] = field(default_factory=list)
    _after_tasks: list[Step] = field(default_factory=list)

    @classmethod
    async def open(
        cls, plumbing: Plumbing, settings: CommonSettings, *, pool_max: int,
        client: NatsClient | None = None, **nats_options: Any,
    ) -> ServiceRuntime:
        """Migrate the schema, open the pool, connect to NATS as the service's own identity.

        The streams are the provisioner's to make (shared.bus.provision, at the stack's start or
        a deploy Job); the service binds to them. `client`: a NATS client made beforehand (its
        callbacks need it); `nats_options` go to its `connect`, over `shared.bus.client_options`.
        """
        await migrate(settings.database_url, plumbing.schema, plumbing.migrations)
        pool = await open_pool(plumbing, settings.database_url, pool_max)
        try:
            if plumbing.nats_name is not None:
                nats_options.setdefault("name", plumbing.nats_name)
            nc = client if client is not None else new_client(plumbing.name)
            options = client_options(plumbing.name, settings.nats_servers) | nats_options
            options.setdefault("ping_interval", plumbing.ping_interval_s)
            await nc.connect(settings.nats_servers, max_reconnect_attempts=-1,
                             # nats-py annotates int; it sleeps that many seconds, a float is fine
                             reconnect_time_wait=plumbing.reconnect_time_wait_s,  # type: ignore[arg-type]
                             **options)
        except BaseException:
            await close_pool(pool)
            raise
        return cls(plumbing, pool, nc, nc.jetstream())

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a task that runs until the stop cancels it."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        return task

    def stop_first(self, step: Step) -> None:
        """Run `step` first at stop, before the tasks are cancelled (stop taking requests)."""
        self._intake.append(step)

    def after_tasks(self, step: Step) -> None:
        """Run `step` at stop once the tasks are stopped, before NATS and the pool close."""
        self._after_tasks.append(step)

    async def stop(self) -> None:
        """Intake, tasks, clean-ups, NATS, pool: each bounded, in this order."""
        for step in self._intake:
            await step()
        await cancel_tasks(self.tasks)
        for step in self._after_tasks:
            await step()
        await close_nats(self.nc, drain=self.plumbing.drain_on_stop)
        await close_pool(self.pool)


async def run_service(
    name: str, settings: S, start: Callable[[S], Awaitable[Running]], *, quiet: Sequence[str] = (),
) -> None:
    """Configure logging, start the service, serve /metrics and /readyz until SIGTERM, stop it."""
    configure_logging(name, level=settings.log_level, fmt=settings.log_format)
    for noisy in quiet:  # libraries whose request logs we keep at WARNING
        logging.getLogger(noisy).setLevel(logging.WARNING)
    await serve(name, await start(settings), settings.ops_port)
