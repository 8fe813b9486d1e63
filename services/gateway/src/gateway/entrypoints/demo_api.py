"""Demo mode: what the simulated switch spoke on its latest test calls (admins; docs/verification.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.verification import SpokenTestCalls, VerificationStreams

from gateway.auth.roles import Role
from gateway.dependencies import correlation_id, get_runtime
from gateway.entrypoints.reporting_api import role_in
from gateway.errors import COMMON_ERRORS
from gateway.service_client import ServiceClient

router = APIRouter(tags=["demo"], responses=COMMON_ERRORS)
NOT_DEMO = ("no demo switch answers here: test calls and their spoken codes are shown in demo mode only"
            " (PATCHBAY_DEMO=1 make run)")
ASK_TIMEOUT_S = 2.0  # the demo switch answers from memory; none at all is answered at once (no responders)


@router.get("/v1/demo/test-calls", response_model=SpokenTestCalls,
            dependencies=[Depends(role_in(Role.ADMIN))],
            summary="Test calls the demo's simulated switch made, with the codes it spoke")
async def spoken_test_calls(request: Request) -> Response:
    """Admins only, and only the demo's switch answers: elsewhere 404 `not_found` (no such switch)."""
    switch = ServiceClient(get_runtime(request).nc, service="demo switch", timeout_s=ASK_TIMEOUT_S,
                           when_absent=NOT_DEMO)
    data = await switch.request(VerificationStreams.DEMO_SPOKEN, b"{}",
                                correlation_id=correlation_id(request))
    SpokenTestCalls.model_validate_json(data)  # the switch is an outside party: only its contract passes
    return Response(data, media_type="application/json")
