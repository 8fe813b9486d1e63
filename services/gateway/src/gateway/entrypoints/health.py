"""Liveness and readiness (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from shared.contracts.customer import Subjects
from shared.errors import ErrorCode, ErrorDetail

from gateway.dependencies import correlation_id, get_runtime
from gateway.errors import UNAVAILABLE_DOC, ApiError
from gateway.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process is alive and serving."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: UNAVAILABLE_DOC}, summary="Readiness")
async def readyz(request: Request) -> Health:
    """NATS connected, PostgreSQL answers, the customer service answers; else 503 naming what is not."""
    runtime = get_runtime(request)
    timeout = runtime.settings.ready_timeout_s
    problems: list[ErrorDetail] = []
    if not runtime.nc.is_connected:
        problems.append(ErrorDetail(field="nats", message="not connected", type="unavailable"))
    try:
        await runtime.pool.fetchval("SELECT 1", timeout=timeout)
    except Exception as exc:  # any failure at all means not ready
        problems.append(ErrorDetail(field="postgres", message=f"does not answer ({type(exc).__name__})",
                                    type="unavailable"))
    if runtime.nc.is_connected:
        try:
            await runtime.customers.request(Subjects.GET_AUDIT_SETTINGS, b"{}",
                                            correlation_id=correlation_id(request), timeout_s=timeout)
        except ApiError as exc:
            problems.append(ErrorDetail(field="customer", message=exc.message, type=exc.code))
    if problems:
        missing = ", ".join(p.field or "" for p in problems)
        raise ApiError(ErrorCode.UNAVAILABLE, f"not ready: {missing}", problems)
    return Health(status="ready", checks={"nats": "ok", "postgres": "ok", "customer": "ok"})
