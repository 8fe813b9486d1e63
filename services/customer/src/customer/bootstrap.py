"""The composition root of the customer service: builds everything, runs it, stops it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import nats
import structlog
from nats.aio.client import Client as NatsClient
from shared.eventstore import EventStore
from shared.logging import configure_logging
from shared.migrations import migrate
from shared.outbox_relay import OutboxRelay
from shared.rpc import RpcServer
from shared.settings import CommonSettings
from shared.streams import ensure_streams

from customer.application.commands import CustomerCommands
from customer.application.penalty_expiry import run_sweeper
from customer.application.queries import CustomerQueries
from customer.application.settings import SettingsService
from customer.application.state_cache import StateCache
from customer.entrypoints.nats_api import QUEUE, routes

SCHEMA = "customer"
MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger(__name__)


class CustomerSettings(CommonSettings):
    """Settings of the customer service (`PATCHBAY_*`)."""

    db_pool_size: int = 10
    command_batch: int = 256
    command_partitions: int = 4
    penalty_sweep_interval_s: float = 1.0
    stream_replicas: int = 1


@dataclass
class CustomerService:
    """Everything the running service holds."""

    settings: CustomerSettings
    pool: asyncpg.Pool
    nc: NatsClient
    rpc: RpcServer
    commands: CustomerCommands
    queries: CustomerQueries
    relay: OutboxRelay
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop taking requests, finish the tasks, close connections."""
        await self.rpc.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.nc.drain()
        await self.pool.close()


async def start(settings: CustomerSettings) -> CustomerService:
    """Migrate, connect, declare streams, start the relay, the sweeper and the subscribers."""
    await migrate(settings.database_url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=2, max_size=settings.db_pool_size,
        server_settings={"search_path": SCHEMA},
    )
    nc = await nats.connect(settings.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = nc.jetstream()
    await ensure_streams(js, replicas=settings.stream_replicas)
    store = EventStore(pool)
    settings_service = SettingsService(store)
    commands = CustomerCommands(
        store, settings_service, StateCache(store), max_batch=settings.command_batch,
        partitions=settings.command_partitions,
    )
    queries = CustomerQueries(pool)
    relay = OutboxRelay(dsn=settings.database_url, schema=SCHEMA, js=js)
    rpc = RpcServer(
        nc, routes(commands=commands, queries=queries, settings=settings_service), queue=QUEUE
    )
    service = CustomerService(settings, pool, nc, rpc, commands, queries, relay)
    service.tasks = [
        asyncio.create_task(commands.run(), name="commands"),
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(
            run_sweeper(pool, commands, settings.penalty_sweep_interval_s), name="penalty-sweeper"
        ),
    ]
    await rpc.start()
    log.info("customer_service_started", nats=settings.nats_url)
    return service


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    settings = CustomerSettings()
    configure_logging("customer", level=settings.log_level, fmt=settings.log_format)
    service = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("customer_service_stopping")
    await service.stop()
