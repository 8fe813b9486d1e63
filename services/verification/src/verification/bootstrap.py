"""The composition root of the verification service: builds everything, runs it, stops it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import nats
import structlog
from nats.aio.client import Client as NatsClient
from shared.logging import configure_logging
from shared.message_outbox import MessageRelay
from shared.migrations import migrate
from shared.rpc import RpcServer
from shared.runtime import cancel_tasks, close_pool, serve
from shared.secrets import Sealer
from shared.settings import CommonSettings
from shared.streams import ensure_streams

from verification.application.service import Limits, VerificationService
from verification.domain.codes import pepper_from
from verification.entrypoints.nats_api import QUEUE, routes

SCHEMA = "verification"
MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger(__name__)


class VerificationSettings(CommonSettings):
    """Settings of the verification service (`PATCHBAY_*`)."""

    db_pool_size: int = 5
    stream_replicas: int = 1
    # the gateway's public address: the e-mail link is <public_url>/portal/v1/verify/email/link?...
    public_url: str = "http://127.0.0.1:8000"
    code_ttl_s: float = 600.0
    code_max_attempts: int = 5
    code_requests_per_window: int = 5
    code_request_window_s: float = 600.0


@dataclass
class VerificationRuntime:
    """Everything the running service holds."""

    settings: VerificationSettings
    pool: asyncpg.Pool
    nc: NatsClient
    rpc: RpcServer
    service: VerificationService
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop taking requests, finish the tasks, close connections."""
        await self.rpc.stop()
        await cancel_tasks(self.tasks)
        try:
            await asyncio.wait_for(self.nc.drain(), 5)
        except Exception:
            await self.nc.close()
        await close_pool(self.pool)


async def start(settings: VerificationSettings) -> VerificationRuntime:
    """Migrate, connect, declare streams, start the outbox relay and the subscribers."""
    sealer = Sealer(settings.secret_key)  # codes travel sealed: no key, no service
    await migrate(settings.database_url, SCHEMA, MIGRATIONS)
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=settings.db_pool_size,
        server_settings={"search_path": SCHEMA},
    )
    nc = await nats.connect(
        settings.nats_servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        name="patchbay-verification",
    )
    js = nc.jetstream()
    await ensure_streams(js, replicas=settings.stream_replicas)
    limits = Limits(
        code_ttl_s=settings.code_ttl_s,
        max_attempts=settings.code_max_attempts,
        requests_per_window=settings.code_requests_per_window,
        request_window_s=settings.code_request_window_s,
        request_timeout_s=settings.request_timeout_s,
    )
    service = VerificationService(
        pool,
        nc,
        sealer,
        pepper_from(settings.secret_key or ""),
        link_base=f"{settings.public_url.rstrip('/')}/portal/v1/verify/email/link",
        limits=limits,
    )
    rpc = RpcServer(nc, routes(service), queue=QUEUE)
    runtime = VerificationRuntime(settings, pool, nc, rpc, service)
    relay = MessageRelay(dsn=settings.database_url, schema=SCHEMA, js=js)
    runtime.tasks = [asyncio.create_task(relay.run(), name="message-relay")]
    await rpc.start()
    log.info("verification_service_started", nats=settings.nats_url)
    return runtime


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    settings = VerificationSettings()
    configure_logging("verification", level=settings.log_level, fmt=settings.log_format)
    await serve("verification", await start(settings), settings.ops_port)
