"""The composition root of the reporting service: builds everything, runs it, stops it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
import structlog
from nats.aio.client import Client as NatsClient
from shared.logging import configure_logging
from shared.migrations import migrate
from shared.outbox_relay import OutboxRelay
from shared.rpc import RpcServer
from shared.runtime import cancel_tasks, close_pool, serve
from shared.streams import ensure_streams

from reporting.adapters.invoice_store import invoice_event_store
from reporting.application.audit_queries import AuditQueries
from reporting.application.balance import BalanceQueries
from reporting.application.customer_terms import nats_customer_terms
from reporting.application.invoices import CustomerTerms, Invoices
from reporting.application.lag import LagQueries
from reporting.application.summaries import SummaryQueries
from reporting.entrypoints.nats_api import QUEUE, routes
from reporting.projections.audit import AuditProjection
from reporting.projections.base import Projection
from reporting.projections.calls import CallsProjection
from reporting.projections.live import LiveProjection
from reporting.projections.payments import PaymentsProjection
from reporting.settings import ReportingSettings

SCHEMA = "reporting"
MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger(__name__)


def all_projections() -> list[Projection[Any]]:
    """Every projection the service keeps live (and the rebuild command can rebuild)."""
    return [AuditProjection(), CallsProjection(), PaymentsProjection()]


async def connect(settings: ReportingSettings) -> tuple[asyncpg.Pool, NatsClient]:
    """Migrate the schema, open the pool (search_path = reporting) and NATS, declare the streams."""
    await migrate(settings.database_url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=2, max_size=settings.db_pool_size,
        server_settings={"search_path": SCHEMA},
    )
    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                            name="patchbay-reporting")
    await ensure_streams(nc.jetstream(), replicas=settings.stream_replicas)
    return pool, nc


@dataclass
class ReportingService:
    """Everything the running service holds."""

    settings: ReportingSettings
    pool: asyncpg.Pool
    nc: NatsClient
    rpc: RpcServer
    live: list[LiveProjection]
    relay: OutboxRelay
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop taking requests, stop the consumers and the relay, close connections."""
        await self.rpc.stop()
        await cancel_tasks(self.tasks)
        # not drain(): a pull subscription whose consumer task is gone may hold messages that
        # nobody will read, and drain() would wait for them until its timeout
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            await self.nc.close()
        await close_pool(self.pool)


async def start(settings: ReportingSettings, *, terms: CustomerTerms | None = None) -> ReportingService:
    """Connect, start the projections, the outbox relay and the request/reply routes."""
    pool, nc = await connect(settings)
    js = nc.jetstream()
    projections = all_projections()
    prefix = settings.durable_prefix
    live = [
        LiveProjection(p, pool, js, batch=settings.consumer_batch, prefix=prefix,
                       ack_wait_s=settings.consumer_ack_wait_s, partitions=settings.partitions,
                       lease_dsn=settings.database_url, failover_after_s=settings.partition_failover_s)
        for p in projections
    ]
    invoices = Invoices(invoice_event_store(pool),
                        terms or nats_customer_terms(nc, timeout_s=settings.request_timeout_s))
    relay = OutboxRelay(dsn=settings.database_url, schema=SCHEMA, js=js)
    rpc = RpcServer(nc, routes(
        audit=AuditQueries(pool),
        summaries=SummaryQueries(pool, live_call_max_age_s=settings.live_call_max_age_s),
        invoices=invoices, balance=BalanceQueries(pool),
        lag=LagQueries(pool, js, projections, prefix=prefix),
    ), queue=QUEUE)
    service = ReportingService(settings, pool, nc, rpc, live, relay)
    service.tasks = [task for p in live for task in p.start()]
    service.tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
    await rpc.start()
    log.info("reporting_service_started", nats=settings.nats_url)
    return service


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    settings = ReportingSettings()
    configure_logging("reporting", level=settings.log_level, fmt=settings.log_format)
    await serve("reporting", await start(settings), settings.ops_port)
