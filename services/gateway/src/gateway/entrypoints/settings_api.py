"""Settings routes (audit for now)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.customer import AuditSettings, Subjects

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.errors import COMMON_ERRORS
from gateway.models import AuditSettingsUpdate

router = APIRouter(prefix="/v1/settings", tags=["settings"], responses=COMMON_ERRORS)


@router.get("/audit", response_model=AuditSettings, summary="Audit settings",
            dependencies=[Depends(require(Permission.SETTINGS_READ))])
async def get_audit_settings(request: Request) -> Response:
    """Whether every change must carry a reason."""
    data = await get_runtime(request).customers.request(
        Subjects.GET_AUDIT_SETTINGS, b"{}", correlation_id=correlation_id(request)
    )
    return Response(data, media_type="application/json")


@router.put("/audit", response_model=AuditSettings, summary="Change audit settings (admin)")
async def put_audit_settings(
    request: Request,
    body: AuditSettingsUpdate,
    who: Annotated[Caller, Depends(caller(Permission.SETTINGS_WRITE))],
) -> AuditSettings:
    """Require (or stop requiring) a reason on every change."""
    reply = await get_runtime(request).customers.request_json(
        Subjects.SET_AUDIT_SETTINGS, {"meta": who.meta(), "require_reason": body.require_reason},
        correlation_id=who.correlation_id,
    )
    return AuditSettings.model_validate(reply)
