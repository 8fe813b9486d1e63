"""The composition root of the reporting service: builds everything, runs it, stops it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient
from shared.data_keys import DataKeyClient
from shared.outbox_relay import OutboxRelay
from shared.partitioned_consumer import PartitionedConsumer
from shared.rpc import RpcServer
from shared.service_runtime import Plumbing, ServiceRuntime, run_service

from reporting.adapters.invoice_store import invoice_event_store
from reporting.application.allocation import PaymentAllocation, consumer_spec
from reporting.application.audit_queries import AuditQueries
from reporting.application.billing_clock import BillingClock
from reporting.application.customer_terms import nats_customer_terms
from reporting.application.invoice_changes import InvoiceChanges
from reporting.application.invoices import CustomerTerms, Invoices
from reporting.application.lag import LagQueries
from reporting.application.schedules import InvoiceSchedules
from reporting.application.summaries import SummaryQueries
from reporting.documents.render import InvoiceRenderer
from reporting.entrypoints.nats_api import QUEUE, routes
from reporting.projections.audit import AuditProjection
from reporting.projections.base import Projection
from reporting.projections.calls import CallsProjection
from reporting.projections.live import LiveProjection
from reporting.settings import ReportingSettings

SCHEMA = "reporting"
MIGRATIONS = Path(__file__).parent / "migrations"
# not drained at stop: a pull subscription whose consumer task is gone may hold messages that
# nobody will read, and drain() would wait for them until its timeout
# keep_session: no reset query on pool release, which cost a round trip (and 6.5 % of the CPU)
# between each projection batch's commit and its acks (issue 21); the rebuild's advisory lock on a
# pooled connection is unlocked by the rebuild itself
PLUMBING = Plumbing(name="reporting", schema=SCHEMA, migrations=MIGRATIONS, nats_name="patchbay-reporting",
                    drain_on_stop=False, keep_session=True)
log = structlog.get_logger(__name__)


def all_projections() -> list[Projection[Any]]:
    """Every projection the service keeps live (and the rebuild command can rebuild)."""
    return [AuditProjection(), CallsProjection()]


async def open_runtime(settings: ReportingSettings) -> ServiceRuntime:
    """Migrate the schema, open the pool (search_path = reporting) and NATS, declare the streams."""
    return await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size)


async def connect(settings: ReportingSettings) -> tuple[asyncpg.Pool, NatsClient]:
    """The pool and NATS connection alone (the rebuild command): closed by the caller."""
    runtime = await open_runtime(settings)
    return runtime.pool, runtime.nc


@dataclass
class ReportingService:
    """Everything the running service holds."""

    settings: ReportingSettings
    runtime: ServiceRuntime
    rpc: RpcServer
    live: list[LiveProjection]
    relay: OutboxRelay
    clock: BillingClock | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's connection pool."""
        return self.runtime.pool

    @property
    def nc(self) -> NatsClient:
        """The service's NATS connection."""
        return self.runtime.nc

    async def stop(self) -> None:
        """Stop taking requests, stop the consumers and the relay, close connections."""
        await self.runtime.stop()


async def start(settings: ReportingSettings, *, terms: CustomerTerms | None = None) -> ReportingService:
    """Connect, start the projections, the outbox relay and the request/reply routes."""
    runtime = await open_runtime(settings)
    pool, nc, js = runtime.pool, runtime.nc, runtime.js
    projections = all_projections()
    prefix = settings.durable_prefix
    live = [
        LiveProjection(p, pool, js, batch=settings.consumer_batch, prefix=prefix,
                       ack_wait_s=settings.consumer_ack_wait_s, partitions=settings.partitions,
                       lease_dsn=settings.database_url, failover_after_s=settings.partition_failover_s)
        for p in projections
    ]
    store = invoice_event_store(pool)
    invoices = Invoices(store, terms or nats_customer_terms(nc, timeout_s=settings.request_timeout_s))
    changes = InvoiceChanges(store)
    allocation = PaymentAllocation(store)
    invoices.after_issue = allocation.allocate  # payments that came first pay the new invoice
    billing_clock = BillingClock(changes, dsn=settings.database_url, schema=SCHEMA,
                                 interval_s=settings.billing_clock_interval_s)
    schedules = InvoiceSchedules(invoices)
    billing_clock.jobs.append(schedules.run)
    relay = OutboxRelay(dsn=settings.database_url, schema=SCHEMA, js=js)
    keys = DataKeyClient(nc, timeout_s=settings.request_timeout_s)  # the audit log's personal values
    await keys.start()
    rpc = RpcServer(nc, routes(
        audit=AuditQueries(pool, keys),
        summaries=SummaryQueries(pool, live_call_max_age_s=settings.live_call_max_age_s),
        invoices=invoices,
        lag=LagQueries(pool, js, projections, prefix=prefix), changes=changes,
        renderer=InvoiceRenderer(settings.invoice_template_dir),
    ), queue=QUEUE)
    service = ReportingService(settings, runtime, rpc, live, relay, clock=billing_clock)
    runtime.tasks.extend(task for p in live for task in p.start())
    runtime.spawn(relay.run(), name="outbox-relay")
    runtime.spawn(billing_clock.run(), name="billing-clock")
    runtime.spawn(PartitionedConsumer(js, consumer_spec(prefix), allocation.handle, settings.partitions,
                                      lease_dsn=settings.database_url,
                                      failover_after_s=settings.partition_failover_s).run(),
                  name="invoice-payments")
    runtime.stop_first(rpc.stop)
    runtime.stop_first(keys.stop)
    await rpc.start()
    log.info("reporting_service_started", nats=settings.nats_url)
    return service


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    await run_service("reporting", ReportingSettings(), start)
