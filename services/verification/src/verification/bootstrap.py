"""The composition root of the verification service: builds everything, runs it, stops it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient
from pydantic import Field, field_validator
from shared.data_keys import DataKeyClient
from shared.erasure_feed import erasure_consumer
from shared.erasure_feed import replay as replay_erasures
from shared.message_outbox import MessageRelay
from shared.rpc import RpcServer
from shared.secrets import Sealer
from shared.service_runtime import Plumbing, ServiceRuntime, run_service
from shared.settings import CommonSettings

from verification.application import store as code_store
from verification.application.service import Limits, VerificationService
from verification.domain.codes import pepper_from
from verification.domain.test_calls import DEFAULT_DENY, TestCallPolicy, parse_prefixes
from verification.entrypoints.nats_api import QUEUE, routes

SCHEMA = "verification"
MIGRATIONS = Path(__file__).parent / "migrations"
PLUMBING = Plumbing(name="verification", schema=SCHEMA, migrations=MIGRATIONS, pool_min=1,
                    nats_name="patchbay-verification")
log = structlog.get_logger(__name__)


class VerificationSettings(CommonSettings):
    """Settings of the verification service (`PATCHBAY_*`)."""

    db_pool_size: int = 5
    # the e-mail link is <PATCHBAY_PUBLIC_URL>/portal/v1/verify/email/link?... (shared.settings)
    code_ttl_s: float = 600.0
    code_max_attempts: int = 5
    code_requests_per_window: int = 5
    code_request_window_s: float = 600.0
    # portal CLI test calls: E.164 prefixes (comma-separated) they may ring / may never ring,
    # and how many one customer may start in 24 hours (domain.test_calls)
    test_call_allow_prefixes: str = ""
    test_call_deny_prefixes: str = DEFAULT_DENY
    test_calls_per_customer_per_day: int = Field(default=20, ge=0)

    @field_validator("test_call_allow_prefixes", "test_call_deny_prefixes")
    @classmethod
    def _prefixes(cls, value: str) -> str:
        parse_prefixes(value)  # a typo is an error at start
        return value


@dataclass
class VerificationRuntime:
    """Everything the running service holds."""

    settings: VerificationSettings
    runtime: ServiceRuntime
    rpc: RpcServer
    service: VerificationService

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


async def start(settings: VerificationSettings) -> VerificationRuntime:
    """Migrate, connect, declare streams, start the outbox relay and the subscribers."""
    # codes travel sealed: no key, no service
    sealer = Sealer(settings.secret_key, settings.secret_key_previous)
    runtime = await ServiceRuntime.open(PLUMBING, settings, pool_max=settings.db_pool_size)
    pool, nc = runtime.pool, runtime.nc
    keys = DataKeyClient(nc, timeout_s=settings.request_timeout_s)  # the events' targets are encrypted
    await keys.start()
    limits = Limits(
        code_ttl_s=settings.code_ttl_s,
        max_attempts=settings.code_max_attempts,
        requests_per_window=settings.code_requests_per_window,
        request_window_s=settings.code_request_window_s,
        request_timeout_s=settings.request_timeout_s,
        test_calls=TestCallPolicy(parse_prefixes(settings.test_call_allow_prefixes),
                                  parse_prefixes(settings.test_call_deny_prefixes),
                                  settings.test_calls_per_customer_per_day),
    )
    service = VerificationService(
        pool,
        nc,
        sealer,
        pepper_from(settings.secret_key or ""),
        link_base=f"{settings.public_base}/portal/v1/verify/email/link",
        limits=limits, keys=keys,
    )
    rpc = RpcServer(nc, routes(service), queue=QUEUE)
    running = VerificationRuntime(settings, runtime, rpc, service)
    runtime.spawn(MessageRelay(dsn=settings.database_url, schema=SCHEMA, js=runtime.js).run(),
                  name="message-relay")
    scrub = functools.partial(code_store.erase_targets, pool)
    await replay_erasures(runtime.js, scrub)  # a restored database drops erased targets again
    runtime.spawn(erasure_consumer(runtime.js, "verification-erasures", scrub, settings, keys.forget).run(),
                  name="erasures")
    runtime.stop_first(rpc.stop)
    runtime.stop_first(keys.stop)
    await rpc.start()
    log.info("verification_service_started", nats=settings.nats_url)
    return running


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    await run_service("verification", VerificationSettings(), start)
