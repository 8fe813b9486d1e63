"""Self-service sign-up: the admin's settings and the public sign-up (product.md section 14).

`POST /portal/v1/signup` answers the same 202 whether the e-mail was new (a `pending_approval`
customer, its contact and an e-mail code) or already known (nothing made): the answer never
tells whether an address has an account. It is limited per client address.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from shared.contracts.signup import SignupRequest, SignupSettings, SignupSettingsOut, SignupSubjects
from shared.contracts.verification import VerificationSubjects

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.entrypoints.portal_api import RATE_DOC, _ip, _portal
from gateway.errors import COMMON_ERRORS, NOT_FOUND_DOC, VALIDATION_DOC, ApiError
from gateway.portal.rate_limit import limit_key

log = structlog.get_logger(__name__)
router = APIRouter(tags=["sign-up"])
Admin = Annotated[Caller, Depends(caller(Permission.SETTINGS_WRITE))]
RECEIVED = ("Thank you. If this e-mail address can be used, a code to confirm it is on its way;"
            " your account waits for approval by our staff.")


class SignupReceived(BaseModel):
    """The one answer to every accepted sign-up."""

    status: str = "received"
    message: str = RECEIVED


class SignupOffer(BaseModel):
    """Whether sign-up is open, and the currencies offered."""

    enabled: bool
    currencies: list[str]


async def _customers(request: Request, subject: str, body: dict[str, Any]) -> bytes:
    return await get_runtime(request).customers.request(
        subject, json.dumps(body, default=str).encode(), correlation_id=correlation_id(request))


@router.get("/v1/settings/signup", response_model=SignupSettingsOut, responses=COMMON_ERRORS,
            dependencies=[Depends(require(Permission.SETTINGS_WRITE))], summary="Sign-up settings")
async def get_settings(request: Request) -> Response:
    """Whether sign-up is on, and its currencies (admin)."""
    return Response(await _customers(request, SignupSubjects.GET_SETTINGS, {}), media_type="application/json")


@router.put("/v1/settings/signup", response_model=SignupSettingsOut, responses=COMMON_ERRORS,
            summary="Turn sign-up on or off")
async def put_settings(request: Request, body: SignupSettings, who: Admin) -> Response:
    """Off by default; `currencies` are those a new customer may choose (admin)."""
    data = await _customers(request, SignupSubjects.SET_SETTINGS, {"meta": who.meta(), **body.model_dump()})
    return Response(data, media_type="application/json")


@router.get("/portal/v1/signup", response_model=SignupOffer, tags=["portal"], summary="Is sign-up open")
async def offer(request: Request) -> SignupOffer:
    """Public: whether the sign-up form is offered, and its currencies."""
    settings = json.loads(await _customers(request, SignupSubjects.GET_SETTINGS, {}))
    enabled = bool(settings["enabled"])
    return SignupOffer(enabled=enabled, currencies=settings["currencies"] if enabled else [])


@router.post("/portal/v1/signup", status_code=202, response_model=SignupReceived, tags=["portal"],
             responses={404: NOT_FOUND_DOC, 422: VALIDATION_DOC, 429: RATE_DOC}, summary="Sign up")
async def signup(request: Request, body: SignupRequest) -> SignupReceived:
    """A company and its contact: a customer waiting for approval, and an e-mail code to the contact.

    The same answer whether or not the e-mail is known; a few sign-ups per address and hour.
    """
    kit, verification = _portal(request)
    settings = get_runtime(request).settings
    ip = _ip(request)
    await kit.limiter.hit(limit_key("signup", ip or "unknown"), limit=settings.portal_signups_per_ip,
                          window_s=settings.portal_signup_window_s, what="sign-ups from this address")
    actor = {"kind": "portal", "id": None, "name": f"sign-up {body.email}", "ip": ip}
    outcome = json.loads(await _customers(request, SignupSubjects.SUBMIT, {
        "meta": {"actor": actor}, "ip": ip, "company": body.company, "contact_name": body.contact_name,
        "email": str(body.email), "password": body.password.get_secret_value(), "currency": body.currency}))
    if outcome["created"]:
        caller_ = {"customer_id": outcome["customer_id"], "contact_id": outcome["contact_id"], "ip": ip,
                   "issued_at": datetime.now(UTC).isoformat()}
        try:
            await verification.request(
                VerificationSubjects.REQUEST_CODE,
                json.dumps({"caller": caller_, "channel": "email"}).encode(),
                correlation_id=correlation_id(request))
        except ApiError as err:  # the account is made: the contact can ask for a code once logged in
            log.warning("signup_code_not_sent", customer_id=outcome["customer_id"], error=err.code)
    return SignupReceived()
