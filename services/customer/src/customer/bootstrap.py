"""The composition root of the customer service: builds everything, runs it, stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson
import structlog
from nats.aio.client import Client as NatsClient
from pydantic import Field
from shared.contracts.contacts import ContactSubjects
from shared.envelope import EventEnvelope
from shared.message_outbox import MessageRelay
from shared.outbox_relay import OutboxRelay
from shared.partitioned_consumer import PartitionedConsumer
from shared.rpc import RpcServer
from shared.secrets import Sealer
from shared.service_runtime import Plumbing, ServiceRuntime, run_service
from shared.settings import CommonSettings

from customer.adapters.data_keys import DataKeyStore
from customer.adapters.event_store import customer_event_store
from customer.application import billing_payments, verification_results
from customer.application.billing_payments import BillingPayments
from customer.application.bulk_edit import BulkEditor
from customer.application.bulk_upload import BulkUploads
from customer.application.commands import CustomerCommands
from customer.application.contacts import ContactService
from customer.application.credit import CreditBook
from customer.application.erasure_replay import ErasureLog, replay_erasures
from customer.application.ipn_worker import IpnWorker
from customer.application.number_blocks import NumberBlocks
from customer.application.passwords import Passwords
from customer.application.payments import PaymentQueries
from customer.application.paypal import IpnInbox, PaypalSettingsService
from customer.application.penalty_expiry import run_sweeper
from customer.application.portal import PortalAccess
from customer.application.queries import CustomerQueries
from customer.application.settings import SettingsService
from customer.application.signup import Signups, SignupSettingsService
from customer.application.state_cache import StateCacheWithDialViews
from customer.entrypoints.bulk_api import bulk_routes
from customer.entrypoints.contacts_api import contact_routes
from customer.entrypoints.dial_api import DialPermissionApi
from customer.entrypoints.nats_api import QUEUE, routes
from customer.entrypoints.number_blocks_api import number_block_routes
from customer.entrypoints.payments_api import payment_routes
from customer.entrypoints.privacy_api import privacy_routes
from customer.entrypoints.signup_api import signup_routes
from customer.projections import board, credit_notes, ledger
from customer.projections.dial_views import DialViews

SCHEMA = "customer"
MIGRATIONS = Path(__file__).parent / "migrations"
PLUMBING = Plumbing(name="customer", schema=SCHEMA, migrations=MIGRATIONS, keep_session=True)
log = structlog.get_logger(__name__)


class CustomerSettings(CommonSettings):
    """Settings of the customer service (`PATCHBAY_*`)."""

    db_pool_size: int = 10
    command_batch: int = 256
    # concurrent batches: 1 on a small machine (bigger batches: measured 4 -> 1 on 2 cores, the
    # service's CPU per create -25%, PostgreSQL's -45%); more where the database is remote or
    # has cores to spare (docs/performance.md)
    command_partitions: int = 1
    # memory (bench/memory.py): a customer's state is ~1.1 KB, a stored reply ~1.3 KB; states
    # past this many are loaded again (one query) when a command needs them; replies past this
    # many are looked up in `commands` when a retry comes. Every customer's dial view (~0.5 KB)
    # stays in memory whatever these say.
    state_cache_size: int = 50_000
    recent_replies: int = 20_000
    # argon2id hashes at once, 64 MiB each (application/passwords.py)
    password_hash_threads: int = Field(default=1, ge=1, le=8)
    # the board's totals are counted again after this process's commits at once, after other
    # processes' (another replica, a bulk upload) within this long (projections/board.py)
    board_total_ttl_s: float = Field(default=5.0, ge=0)
    penalty_sweep_interval_s: float = 1.0
    # call records per ledger write (projections/ledger.py)
    ledger_batch: int = Field(default=100, ge=1, le=5000)
    # a short batch of call records waits this long for more (fewer transactions per record)
    ledger_linger_s: float = Field(default=0.05, ge=0, le=1)
    # the longest call max_duration_s allows (product.md section 11)
    max_call_duration_s: int = Field(default=14_400, ge=1)
    # PayPal IPN verification: per attempt, attempts, first retry delay (doubling)
    ipn_verify_timeout_s: float = Field(default=30.0, gt=0)
    ipn_max_attempts: int = Field(default=8, ge=1)
    ipn_retry_base_s: float = Field(default=5.0, gt=0)
    # personal data encrypted in every event (product.md section 15); 0 only to measure its cost
    encrypt_personal: bool = True
    data_key_cache_size: int = Field(default=50_000, ge=1)
    # an append-only file of erased subjects, on storage backups do not roll back (docs/privacy.md)
    erasure_log: Path | None = None
    # the portal page where contacts log in, sent with generated passwords (PATCHBAY_PORTAL_URL);
    # unset: <PATCHBAY_PUBLIC_URL>/portal/
    portal_url: str | None = None

    @property
    def portal_page(self) -> str:
        """Where the new-contact and reset e-mails send contacts to log in."""
        return self.portal_url or f"{self.public_base}/portal/"


@dataclass
class CustomerService:
    """Everything the running service holds."""

    settings: CustomerSettings
    runtime: ServiceRuntime
    rpc: RpcServer
    commands: CustomerCommands
    queries: CustomerQueries
    relay: OutboxRelay
    dial: DialPermissionApi | None = None

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


async def start(settings: CustomerSettings) -> CustomerService:
    """Migrate, connect, declare streams, start the relay, the sweeper and the subscribers."""
    feeds: list[DialPermissionApi] = []

    async def reconnected() -> None:
        for feed in feeds:  # events may have passed while we were away: read everything again
            asyncio.get_running_loop().create_task(feed.reload_all())

    async def published(events: list[EventEnvelope]) -> None:
        for feed in feeds:  # what this connection publishes does not come back to it (no_echo)
            feed.published(events)

    # no_echo: the events this process publishes (the outbox relay's) are not delivered back to
    # its own dial feed (a read, a parse and a header parse per event, and nats-server's send);
    # the relay tells the feed instead, once published (docs/performance.md, "command path")
    runtime = await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size,
                                        reconnected_cb=reconnected, no_echo=True)
    pool, nc, js = runtime.pool, runtime.nc, runtime.js
    relay = OutboxRelay(dsn=settings.database_url, schema=SCHEMA, js=js, on_published=published)
    totals = board.BoardTotals(settings.board_total_ttl_s)

    def appended(events: list[EventEnvelope]) -> None:
        relay.hint(events)
        totals.clear()  # the board changed: its totals are counted again

    sealer = Sealer(settings.secret_key, settings.secret_key_previous) if settings.secret_key else None
    keys = DataKeyStore(pool, sealer, max_cached=settings.data_key_cache_size)
    erasure_log = ErasureLog(settings.erasure_log) if settings.erasure_log else None

    def erased(subjects: list[str]) -> None:
        keys.forget(subjects)
        if erasure_log is not None:
            erasure_log.append(subjects)

    store = customer_event_store(pool, on_appended=appended, on_appended_json=relay.hint_json, keys=keys,
                                 encrypt=settings.encrypt_personal)
    relay.follow(store.appending)  # a relay pass waits for the hints of this process's appends
    settings_service = SettingsService(store)
    dial_views = DialViews(CreditBook(settings.max_call_duration_s))
    commands = CustomerCommands(
        store, settings_service, StateCacheWithDialViews(store, dial_views, settings.state_cache_size),
        max_batch=settings.command_batch, partitions=settings.command_partitions,
        recent_replies=settings.recent_replies, on_erased=erased,
    )
    passwords = Passwords(threads=settings.password_hash_threads)
    if sealer is None:
        log.warning("no_secret_key", effect="generated passwords cannot be sent (PATCHBAY_SECRET_KEY)")
    contacts = ContactService(commands, pool, passwords, sealer, settings.portal_page)
    portal = PortalAccess(pool, passwords)
    dial = DialPermissionApi(dial_views, pool, nc, subject=ContactSubjects.DIAL_PERMISSION, queue=QUEUE)
    feeds.append(dial)
    walk_pool = await board.open_walk_pool(settings.database_url, SCHEMA)
    runtime.after_tasks(walk_pool.close)
    queries = CustomerQueries(pool, totals, store, walk_pool)
    paypal, inbox = PaypalSettingsService(store), IpnInbox(pool)
    signup_settings = SignupSettingsService(store)

    async def charges_changed(changed: list[ledger.Charges]) -> None:
        for charges in changed:  # this replica at once, the others through core NATS (one message)
            dial_views.credit.set_charges(charges)
        await nc.publish(ledger.LEDGER_CHANGED, orjson.dumps([c.item() for c in changed]))

    rpc = RpcServer(
        nc, [*routes(commands=commands, queries=queries, settings=settings_service),
             *contact_routes(contacts=contacts, portal=portal),
             *bulk_routes(uploads=BulkUploads(store, settings_service, on_committed=totals.clear),
                          editor=BulkEditor(commands, pool)),
             *number_block_routes(blocks=NumberBlocks(commands, settings_service, pool)),
             *payment_routes(commands=commands, queries=PaymentQueries(pool, keys), paypal=paypal,
                             inbox=inbox),
             *privacy_routes(commands=commands, keys=keys),
             *signup_routes(signups=Signups(commands, contacts, pool, signup_settings),
                            settings=signup_settings)],
        queue=QUEUE,
    )
    service = CustomerService(settings, runtime, rpc, commands, queries, relay, dial=dial)
    results = verification_results.VerificationResults(commands, keys)
    runtime.spawn(commands.run(), name="commands")
    if commands.trace is not None:
        commands.trace.install(store=store, relay=relay, nc=nc)
        runtime.spawn(commands.trace.run(), name="command-trace")
    runtime.spawn(relay.run(), name="outbox-relay")
    runtime.spawn(run_sweeper(pool, commands, settings.penalty_sweep_interval_s), name="penalty-sweeper")
    runtime.spawn(MessageRelay(dsn=settings.database_url, schema=SCHEMA, js=js).run(), name="message-relay")
    runtime.spawn(
        PartitionedConsumer(js, verification_results.SPEC, results.handle, settings.partitions,
                            lease_dsn=settings.database_url,
                            failover_after_s=settings.partition_failover_s).run(),
        name="verification-results",
    )
    runtime.spawn(dial.run(), name="dial-feed")
    _spawn_money(runtime, settings, commands, paypal, inbox, charges_changed)
    # at stop: no more requests, no more dial answers, then the tasks, NATS (drained), the pool
    runtime.stop_first(rpc.stop)
    runtime.stop_first(dial.stop)
    await replay_erasures(js, pool, erasure_log)  # before answering: a restored database may hold erased keys
    await dial.start()
    await rpc.start()
    log.info("customer_service_started", nats=settings.nats_url)
    return service


def _spawn_money(
    runtime: ServiceRuntime, settings: CustomerSettings, commands: CustomerCommands,
    paypal: PaypalSettingsService, inbox: IpnInbox,
    charges_changed: Callable[[list[ledger.Charges]], Awaitable[None]],
) -> None:
    """The ledger's consumers (call charges, billing payments, credit notes) and the PayPal IPN worker."""
    lease = {"lease_dsn": settings.database_url, "failover_after_s": settings.partition_failover_s}
    charges = ledger.LedgerProjection(runtime.pool, charges_changed)
    billing = BillingPayments(commands)
    worker = IpnWorker(runtime.pool, inbox, paypal, commands, timeout_s=settings.ipn_verify_timeout_s,
                       max_attempts=settings.ipn_max_attempts, retry_base_s=settings.ipn_retry_base_s)
    # small batches: decoding one (~20 µs a record) holds the loop the dial answers share
    runtime.spawn(PartitionedConsumer(runtime.js, ledger.SPEC, charges.handle, settings.partitions,
                                      batch=settings.ledger_batch, linger_s=settings.ledger_linger_s,
                                      **lease).run(), name="ledger-charges")
    runtime.spawn(PartitionedConsumer(runtime.js, billing_payments.SPEC, billing.handle, settings.partitions,
                                      **lease).run(), name="billing-payments")
    notes = credit_notes.CreditNotesProjection(runtime.pool, charges_changed)
    runtime.spawn(PartitionedConsumer(runtime.js, credit_notes.SPEC, notes.handle, settings.partitions,
                                      **lease).run(), name="ledger-credit-notes")
    runtime.spawn(worker.run(), name="paypal-ipn")


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    await run_service("customer", CustomerSettings(), start)
