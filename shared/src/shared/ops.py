"""Operations: Prometheus metrics, liveness and readiness of one service process.

Every service serves `GET /metrics`, `/healthz` and `/readyz` on `PATCHBAY_OPS_PORT` (the
stack runner gives each its own). The request/reply server and the consumer base record
their metrics here, so each service gets handled / failed / latency / lag without code of
its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = structlog.get_logger(__name__)

REQUESTS = Counter(
    "patchbay_requests_total", "Request/reply requests answered", ["subject", "outcome"]
)
REQUEST_SECONDS = Histogram(
    "patchbay_request_seconds", "Time to answer a request", ["subject"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0),
)
MESSAGES = Counter(
    "patchbay_messages_total", "JetStream messages consumed", ["consumer", "outcome"]
)
CONSUMER_LAG = Gauge(
    "patchbay_consumer_lag_messages", "Messages not yet delivered to a consumer", ["consumer"]
)
PARTITION_READING = Gauge(
    "patchbay_partition_reading", "1 while this process reads a partition's durable (holds its lease)",
    ["consumer"],
)
PUBLISHED = Counter("patchbay_events_published_total", "Events the outbox relay published", ["schema"])

Check = Callable[[], Awaitable[dict[str, bool]]]


class OpsServer:
    """Serves /metrics, /healthz and /readyz for one process."""

    def __init__(self, service: str, port: int, ready: Check, host: str = "127.0.0.1") -> None:
        self.service = service
        self.port = port
        self.host = host
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (a port that is taken is logged, not fatal: the service still works)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            log.warning("ops_port_unavailable", port=self.port, error=str(exc))

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"service": self.service, "status": "alive"})

    async def _readyz(self, _: web.Request) -> web.Response:
        try:
            checks = await self.ready()
        except Exception as exc:
            checks = {"error": False}
            log.warning("readiness_check_failed", error=str(exc))
        ok = all(checks.values())
        return web.json_response(
            {"service": self.service, "ready": ok, "checks": checks}, status=200 if ok else 503
        )


def readiness(
    *, pool: Any = None, nc: Any = None, extra: dict[str, Callable[[], bool]] | None = None
) -> Check:
    """The usual readiness checks: PostgreSQL answers, NATS is connected, and any extras."""

    async def check() -> dict[str, bool]:
        checks: dict[str, bool] = {}
        if nc is not None:
            checks["nats"] = bool(nc.is_connected)
        if pool is not None:
            try:
                checks["postgres"] = await asyncio.wait_for(pool.fetchval("SELECT true"), 2.0) is True
            except Exception:
                checks["postgres"] = False
        for name, probe in (extra or {}).items():
            checks[name] = bool(probe())
        return checks

    return check


async def serve_ops(
    service: str, port: int | None, ready: Check, host: str | None = None
) -> OpsServer | None:
    """Start the ops endpoints when a port is configured (PATCHBAY_OPS_PORT).

    They listen on PATCHBAY_OPS_HOST (default 127.0.0.1); in a container set it to 0.0.0.0 so
    that probes and Prometheus reach them.
    """
    if port is None:
        return None
    server = OpsServer(service, port, ready, host=host or os.environ.get("PATCHBAY_OPS_HOST", "127.0.0.1"))
    await server.start()
    return server
