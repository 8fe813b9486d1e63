"""The composition root of the alerts service: builds everything, runs it, stops it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient
from shared.message_outbox import MessageRelay
from shared.partitioned_consumer import PartitionedConsumer
from shared.rpc import RpcServer
from shared.service_runtime import Plumbing, ServiceRuntime, run_service
from shared.settings import CommonSettings

from alerts.application.actions import ActionWorker
from alerts.application.evaluator import BILLING_SPEC, CALLS_SPEC, CUSTOMER_SPEC, Evaluator
from alerts.application.rules import RuleBook, RuleStore
from alerts.entrypoints.nats_api import QUEUE, routes

SCHEMA = "alerts"
MIGRATIONS = Path(__file__).parent / "migrations"
PLUMBING = Plumbing(name="alerts", schema=SCHEMA, migrations=MIGRATIONS, pool_min=2,
                    nats_name="patchbay-alerts", drain_on_stop=False)
log = structlog.get_logger(__name__)


class AlertsSettings(CommonSettings):
    """Settings of the alerts service (`PATCHBAY_*`)."""

    db_pool_size: int = 10
    consumer_batch: int = 500


@dataclass
class AlertsService:
    """Everything the running service holds."""

    settings: AlertsSettings
    runtime: ServiceRuntime
    rpc: RpcServer
    evaluator: Evaluator
    actions: ActionWorker
    consumers: list[PartitionedConsumer]

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's connection pool."""
        return self.runtime.pool

    @property
    def nc(self) -> NatsClient:
        """The service's NATS connection."""
        return self.runtime.nc

    async def stop(self) -> None:
        """Stop taking requests, finish the tasks, close connections."""
        await self.runtime.stop()


async def start(settings: AlertsSettings) -> AlertsService:
    """Migrate, connect, declare streams; serve the rules, evaluate the streams, take the actions."""
    runtime = await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size)
    pool, nc, js = runtime.pool, runtime.nc, runtime.js
    store = RuleStore(pool)
    book = RuleBook(pool)
    await book.refresh()
    actions = ActionWorker(pool, nc, js, timeout_s=settings.request_timeout_s)
    evaluator = Evaluator(pool, book, on_fired=actions.wake)
    options = {"lease_dsn": settings.database_url, "failover_after_s": settings.partition_failover_s,
               "batch": settings.consumer_batch}
    consumers = [
        PartitionedConsumer(js, CALLS_SPEC, evaluator.handle_calls, settings.partitions, **options),
        PartitionedConsumer(js, CUSTOMER_SPEC, evaluator.handle_customers, settings.partitions, **options),
        PartitionedConsumer(js, BILLING_SPEC, evaluator.handle_billing, settings.partitions, **options),
    ]
    rpc = RpcServer(nc, routes(store, pool), queue=QUEUE)
    running = AlertsService(settings, runtime, rpc, evaluator, actions, consumers)
    for consumer in consumers:
        runtime.spawn(consumer.run(), name=f"consumer-{consumer.spec.durable}")
    runtime.spawn(actions.run(), name="alert-actions")
    runtime.spawn(MessageRelay(dsn=settings.database_url, schema=SCHEMA, js=js).run(), name="message-relay")
    runtime.stop_first(rpc.stop)
    await rpc.start()
    log.info("alerts_service_started", nats=settings.nats_url, partitions=settings.partitions)
    return running


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    await run_service("alerts", AlertsSettings(), start)
