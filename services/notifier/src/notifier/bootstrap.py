"""The composition root of the notifier: builds everything, runs it, stops it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient
from shared.data_keys import DataKeyClient
from shared.erasure_feed import erasure_consumer
from shared.erasure_feed import replay as replay_erasures
from shared.eventstore import EventStore
from shared.ids import new_id
from shared.outbox_relay import OutboxRelay
from shared.partitioned_consumer import PartitionedConsumer
from shared.rpc import RpcServer
from shared.secrets import Sealer
from shared.service_runtime import Plumbing, ServiceRuntime, run_service
from shared.settings import CommonSettings

from notifier.adapters.customer_directory import CustomerDirectory
from notifier.adapters.delivery_store import DeliveryStore
from notifier.adapters.handover_journal import HandoverJournal
from notifier.application.broadcast import BroadcastService
from notifier.application.channel_settings import ChannelSettings
from notifier.application.dead_letters import DeadLetterPublisher
from notifier.application.delivery_engine import DeliveryEngine
from notifier.application.message_queries import MessageQueries
from notifier.application.recovery import InstanceLease, Recovery
from notifier.application.system_messages import NOTIFY_CONSUMER, SystemMessages
from notifier.application.waker import Waker
from notifier.domain.retry import RetryPolicy
from notifier.entrypoints.nats_api import QUEUE, routes

SCHEMA = "notifier"
MIGRATIONS = Path(__file__).parent / "migrations"
# not drained at stop: the pull subscription of the cancelled consumer would hold it for its 30 s timeout
PLUMBING = Plumbing(name="notifier", schema=SCHEMA, migrations=MIGRATIONS, nats_name="patchbay-notifier",
                    drain_on_stop=False)
log = structlog.get_logger(__name__)


class NotifierSettings(CommonSettings):
    """Settings of the notifier (`PATCHBAY_*`)."""

    db_pool_size: int = 10
    email_workers: int = 4
    sms_workers: int = 4
    delivery_batch: int = 50
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 600.0
    idle_poll_s: float = 0.5
    recovery_interval_s: float = 2.0
    dead_letter_interval_s: float = 1.0
    journal_dir: Path | None = None  # default: <data_dir>/notifier/handover
    provider_timeout_s: float = 30.0  # an SMTP exchange step or a Twilio request, at most
    smtp_validate_certs: bool = True
    smtp_ca_file: Path | None = None  # trust this CA too (a relay with a private certificate)
    # plain-http provider APIs (the SMS api_base_url): local test doubles only, never in production
    allow_insecure_providers: bool = False

    def handover_dir(self) -> Path:
        """Where handover journals live (must survive a restart of the process)."""
        return self.journal_dir or self.data_dir / "notifier" / "handover"


@dataclass
class NotifierService:
    """Everything the running notifier holds."""

    settings: NotifierSettings
    runtime: ServiceRuntime
    instance: UUID
    rpc: RpcServer
    engine: DeliveryEngine
    recovery: Recovery
    lease: InstanceLease
    journal: HandoverJournal
    store: DeliveryStore
    consumer: PartitionedConsumer
    relay: OutboxRelay
    listener: asyncpg.Connection

    @property
    def pool(self) -> asyncpg.Pool:
        """The service's connection pool."""
        return self.runtime.pool

    @property
    def nc(self) -> NatsClient:
        """The service's NATS connection."""
        return self.runtime.nc

    async def stop(self) -> None:
        """Stop taking work, settle this instance's own open claims, close everything."""
        await self.runtime.stop()

    async def settle(self) -> None:
        """Once the tasks are stopped: close the journal, settle the claims cut short, let go."""
        self.journal.close()
        with contextlib.suppress(Exception):
            await self.recovery.settle(self.instance)  # claims cut short by the stop
        await self.lease.release()
        with contextlib.suppress(Exception):
            await self.listener.close()


async def start(settings: NotifierSettings) -> NotifierService:
    """Migrate, connect, settle dead instances' claims, then start consumers, senders and routes."""
    sealer = Sealer(settings.secret_key, settings.secret_key_previous)
    runtime = await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size)
    pool, nc, js = runtime.pool, runtime.nc, runtime.js
    instance = new_id()
    relay = OutboxRelay(dsn=settings.database_url, schema=SCHEMA, js=js)
    # a delivery's `to` is personal: encrypted with its contact's (else customer's) key, asked of
    # the customer service; an outcome after the erasure is written "[erased]"
    keys = DataKeyClient(nc, timeout_s=settings.request_timeout_s)
    await keys.start()
    events = EventStore(pool, on_appended=relay.hint,  # the relay publishes without reading back
                        keys=keys, redact_erased=True)
    store = DeliveryStore(pool, events)
    channel_settings = ChannelSettings(
        pool,
        events,
        sealer,
        validate_certs=settings.smtp_validate_certs,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        allow_insecure=settings.allow_insecure_providers,
        timeout_s=settings.provider_timeout_s,
    )
    waker = Waker()
    journal = HandoverJournal(settings.handover_dir(), instance)
    journal.open()
    lease = InstanceLease(settings.database_url, instance)
    await lease.acquire()
    recovery = Recovery(store=store, lease=lease, journal_dir=settings.handover_dir())
    await recovery.once()
    policy = RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay_s=settings.retry_base_s,
        max_delay_s=settings.retry_max_s,
    )
    engine = DeliveryEngine(
        store=store,
        settings=channel_settings,
        journal=journal,
        sealer=sealer,
        policy=policy,
        instance=instance,
        waker=waker,
        batch=settings.delivery_batch,
        idle_poll_s=settings.idle_poll_s,
        workers={"email": settings.email_workers, "sms": settings.sms_workers},
    )
    recovery.active = lambda: engine.active  # claims this process still works on
    listener = await asyncpg.connect(settings.database_url)
    await listener.add_listener("deliveries", waker.wake)
    await listener.add_listener("channel_settings", waker.on_settings_notice)  # any replica's change
    system = SystemMessages(store=store, sealer=sealer, wake=waker.wake)
    consumer = PartitionedConsumer(js, NOTIFY_CONSUMER, system.handle, settings.partitions, batch=200,
                                   lease_dsn=settings.database_url,
                                   failover_after_s=settings.partition_failover_s)
    dead_letters = DeadLetterPublisher(store, js)
    broadcasts = BroadcastService(
        store=store,
        events=events,
        directory=CustomerDirectory(nc, timeout_s=settings.request_timeout_s),
        settings=channel_settings,
        wake=waker.wake,
    )
    rpc = RpcServer(
        nc,
        routes(broadcasts=broadcasts, queries=MessageQueries(pool), settings=channel_settings),
        queue=QUEUE,
    )
    service = NotifierService(
        settings, runtime, instance, rpc, engine, recovery, lease, journal, store, consumer, relay, listener
    )
    runtime.spawn(engine.run(), name="delivery-engine")
    runtime.spawn(recovery.run(settings.recovery_interval_s), name="recovery")
    runtime.spawn(consumer.run(), name="notify-consumer")
    runtime.spawn(relay.run(), name="outbox-relay")
    runtime.spawn(dead_letters.run(settings.dead_letter_interval_s), name="dead-letters")
    await replay_erasures(js, store.erase)  # a restored database drops erased addresses again
    runtime.spawn(erasure_consumer(js, "notifier-erasures", store.erase, settings, keys.forget).run(),
                  name="erasures")
    runtime.stop_first(rpc.stop)
    # the workers stopped and awaited before anything they use closes (the pool last of all)
    runtime.stop_first(engine.stop)
    runtime.stop_first(keys.stop)
    runtime.after_tasks(service.settle)
    await rpc.start()
    log.info("notifier_started", instance=str(instance), nats=settings.nats_url)
    return service


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    # request logs of SDKs: nothing a message body could leak into
    await run_service("notifier", NotifierSettings(), start, quiet=("twilio", "aiosmtplib"))
