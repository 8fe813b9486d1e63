"""Alert rules and their firings (admin, operator): answered by the alerts service (docs/alerts.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from shared.contracts.alerts import AlertPage, AlertRule, AlertRuleIn, AlertSubjects, FiringPage

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, expected_version, get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, PRECONDITION_DOC
from gateway.service_client import ServiceClient

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=COMMON_ERRORS)
Manager = Annotated[Caller, Depends(caller(Permission.ALERTS))]
Reader = Depends(require(Permission.ALERTS))
Version = Annotated[int | None, Depends(expected_version)]
S = AlertSubjects


def _client(request: Request) -> ServiceClient:
    runtime = get_runtime(request)
    return ServiceClient(runtime.nc, service="alerts", timeout_s=runtime.settings.request_timeout_s)


async def _ask(request: Request, subject: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":"), default=str).encode()
    return await _client(request).request(subject, payload, correlation_id=correlation_id(request))


def _rule(data: bytes, status_code: int = 200) -> Response:
    head = json.loads(data)
    headers = {"ETag": f'"{head["version"]}"'}
    if status_code == 201:
        headers["Location"] = f"/v1/alerts/{head['id']}"
    return Response(data, status_code=status_code, media_type="application/json", headers=headers)


@router.post("", status_code=201, response_model=AlertRule, responses={409: CONFLICT_DOC},
             summary="Create an alert rule")
async def create_alert(request: Request, body: AlertRuleIn, who: Manager) -> Response:
    """A rule on one area for a scope (all, one customer, a tag); its name is unique (409 name_taken)."""
    data = await _ask(request, S.CREATE, {"meta": who.meta(), "rule": body.model_dump(mode="json")})
    return _rule(data, 201)


@router.get("", response_model=AlertPage, dependencies=[Reader], summary="List alert rules")
async def list_alerts(request: Request, customer_id: UUID | None = None) -> Response:
    """Every rule by name; with `customer_id`, the rules that watch that customer."""
    data = await _ask(request, S.LIST, {"customer_id": str(customer_id) if customer_id else None})
    return Response(data, media_type="application/json")


@router.get("/firings", response_model=FiringPage, dependencies=[Reader], summary="List firings")
async def list_firings(
    request: Request, customer_id: UUID | None = None, alert_id: UUID | None = None,
    since: datetime | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Firings newest first: rule, customer, value, threshold, actions taken, when."""
    data = await _ask(request, S.FIRINGS, {
        "customer_id": str(customer_id) if customer_id else None,
        "alert_id": str(alert_id) if alert_id else None,
        "since": since.isoformat() if since else None, "limit": limit})
    return Response(data, media_type="application/json")


@router.get("/{alert_id}", response_model=AlertRule, dependencies=[Reader], responses={404: NOT_FOUND_DOC},
            summary="Read an alert rule")
async def get_alert(request: Request, alert_id: UUID) -> Response:
    """One rule, with its version as ETag."""
    return _rule(await _ask(request, S.GET, {"alert_id": str(alert_id)}))


@router.put("/{alert_id}", response_model=AlertRule, summary="Replace an alert rule",
            responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC, 412: PRECONDITION_DOC})
async def put_alert(
    request: Request, alert_id: UUID, body: AlertRuleIn, who: Manager, version: Version
) -> Response:
    """The whole rule; a new version re-arms it for every customer. `If-Match` guards lost updates."""
    data = await _ask(request, S.UPDATE, {"meta": who.meta(), "alert_id": str(alert_id),
                                          "expected_version": version, "rule": body.model_dump(mode="json")})
    return _rule(data)


@router.delete("/{alert_id}", status_code=204, response_class=Response, responses={404: NOT_FOUND_DOC},
               summary="Delete an alert rule")
async def delete_alert(request: Request, alert_id: UUID, who: Manager) -> Response:
    """The rule stops; its firings stay listed."""
    await _ask(request, S.DELETE, {"meta": who.meta(), "alert_id": str(alert_id)})
    return Response(status_code=204)


@router.post("/{alert_id}/pause", response_model=AlertRule, responses={404: NOT_FOUND_DOC},
             summary="Pause an alert rule")
async def pause_alert(request: Request, alert_id: UUID, who: Manager) -> Response:
    """Not evaluated until resumed."""
    return _rule(await _ask(request, S.PAUSE, {"meta": who.meta(), "alert_id": str(alert_id)}))


@router.post("/{alert_id}/resume", response_model=AlertRule, responses={404: NOT_FOUND_DOC},
             summary="Resume an alert rule")
async def resume_alert(request: Request, alert_id: UUID, who: Manager) -> Response:
    """Evaluated again from the next event."""
    return _rule(await _ask(request, S.RESUME, {"meta": who.meta(), "alert_id": str(alert_id)}))
