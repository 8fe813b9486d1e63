"""The customer portal: a contact logs in, sees itself and its customer, and verifies.

Every portal route acts only for the contact and customer inside its session token: no
route takes a customer or contact id from the client. The customer and verification
services check the session again on each request (contact still there, portal rules).
The verification routes take an `Idempotency-Key`, sent on as `meta.command_id` scoped to the
contact (or, for the e-mail link, to the verification): a retry after a lost reply answers like
the first and sends no second code.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, EmailStr, Field, SecretStr
from shared.contracts.base import Strict
from shared.contracts.contacts import E164, ContactSubjects, PortalView
from shared.contracts.verification import CodeSent, VerificationSubjects, Verified
from shared.errors import ErrorCode

from gateway.dependencies import correlation_id, get_runtime, scoped_command_id
from gateway.errors import UNAUTHENTICATED_DOC, VALIDATION_DOC, ApiError, _doc
from gateway.portal.login_guard import LoginGuard
from gateway.portal.rate_limit import limit_key
from gateway.runtime import PortalKit
from gateway.service_client import ServiceClient

router = APIRouter(prefix="/portal/v1", tags=["portal"])
portal_bearer = HTTPBearer(auto_error=False, description="A portal session token from POST /portal/v1/login.")
CHALLENGE = {"WWW-Authenticate": "Bearer"}
RATE_DOC = _doc("Too many attempts; `Retry-After` says when to try again.")
FORBIDDEN_DOC = _doc(
    "Portal access is off, the customer is inactive or deleted, or the address is not allowed"
    " (login answers all of these 401, like a wrong password)."
)
CONFLICT_DOC = _doc("The code was already used, or the Idempotency-Key was used for another request.")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED_DOC, 403: FORBIDDEN_DOC, 409: CONFLICT_DOC, 422: VALIDATION_DOC,
}
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200,
    description="Retrying with the same key (as the same contact) returns the first answer: no second"
    " code, test call or outcome. A key reused for another request is 409.",
)]


class LoginRequest(Strict):
    """A contact's e-mail and password."""

    email: EmailStr
    password: SecretStr = Field(min_length=1, max_length=256)


class LoginAnswer(BaseModel):
    """A session token for the portal routes, and when it expires."""

    token: str
    expires_at: str


class CodeEntry(Strict):
    """A code the contact received."""

    code: str = Field(min_length=1, max_length=20)


class CliStart(Strict):
    """The caller ID to verify by a test call."""

    number: E164


def _portal(request: Request) -> tuple[PortalKit, ServiceClient]:
    runtime = get_runtime(request)
    assert runtime.portal is not None and runtime.verification is not None
    return runtime.portal, runtime.verification


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def session(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(portal_bearer)]
) -> dict[str, Any]:
    """The caller of a portal route: the contact and customer of a valid session token."""
    if credentials is None:
        raise ApiError(ErrorCode.UNAUTHENTICATED, "log in first: POST /portal/v1/login", headers=CHALLENGE)
    kit = _portal(request)[0]
    principal = kit.sessions.check(credentials.credentials)
    if principal is not None and kit.revocations is not None and await kit.revocations.revoked(principal):
        principal = None  # logged out
    if principal is None:
        raise ApiError(
            ErrorCode.UNAUTHENTICATED,
            "the session is invalid or has expired; log in again",
            headers=CHALLENGE,
        )
    request.state.principal = principal
    return {
        "customer_id": str(principal.customer_id),
        "contact_id": str(principal.contact_id),
        "ip": _ip(request),
        "issued_at": principal.issued_at.isoformat(),
    }


Session = Annotated[dict[str, Any], Depends(session)]


def _meta(scope: str, key: str | None) -> dict[str, Any]:
    """`meta` for a verification request: the Idempotency-Key scoped to its owner (none without a key)."""
    command_id = scoped_command_id(scope, key)
    return {"meta": {"command_id": command_id}} if command_id else {}


async def _ask(request: Request, client: ServiceClient, subject: str, body: dict[str, Any]) -> Response:
    data = await client.request(subject, json.dumps(body).encode(), correlation_id=correlation_id(request))
    return Response(data, media_type="application/json")


@router.post("/login", response_model=LoginAnswer, responses={**ERRORS, 429: RATE_DOC}, summary="Log in")
async def login(request: Request, body: LoginRequest) -> LoginAnswer:
    """E-mail and password give a short-lived session token; every refusal answers the same 401.

    Attempts are limited per client network, failures per e-mail from that network.
    """
    kit, _ = _portal(request)
    guard = LoginGuard(kit.limiter, get_runtime(request).settings, body.email, _ip(request))
    await guard.before()
    try:
        with kit.slots.take():
            data = await get_runtime(request).customers.request(
                ContactSubjects.PORTAL_LOGIN,
                json.dumps(
                    {"email": body.email, "password": body.password.get_secret_value(), "ip": _ip(request)}
                ).encode(),
                correlation_id=correlation_id(request),
            )
    except ApiError as err:
        raise await guard.refused(err) from None
    await guard.succeeded()
    view = json.loads(data)
    token, expires = kit.sessions.issue(view["contact"]["id"], view["customer"]["id"])
    return LoginAnswer(token=token, expires_at=expires.isoformat())


@router.post("/logout", status_code=204, response_class=Response, responses=ERRORS, summary="Log out")
async def logout(request: Request, who: Session) -> Response:
    """End this session token now (it answers 401 from here on)."""
    kit, _ = _portal(request)
    if kit.revocations is not None:
        await kit.revocations.revoke(request.state.principal)
    return Response(status_code=204)


@router.get("/me", response_model=PortalView, responses=ERRORS, summary="The contact and its customer")
async def me(request: Request, who: Session) -> Response:
    """The logged-in contact and its customer (public notes only)."""
    return await _ask(request, get_runtime(request).customers, ContactSubjects.PORTAL_SESSION, who)


@router.post(
    "/verify/{channel}",
    response_model=CodeSent,
    responses={**ERRORS, 429: RATE_DOC},
    summary="Request a verification code",
)
async def request_code(
    request: Request, channel: Literal["email", "mobile"], who: Session, key: IdempotencyKey = None
) -> Response:
    """Send a 6-digit code to the contact's e-mail (with a link) or mobile; valid 10 minutes."""
    return await _ask(
        request, _portal(request)[1], VerificationSubjects.REQUEST_CODE,
        {"caller": who, "channel": channel, **_meta(who["contact_id"], key)},
    )


@router.post(
    "/verify/{channel}/confirm",
    response_model=Verified,
    responses={**ERRORS, 429: RATE_DOC},
    summary="Confirm a verification code",
)
async def confirm_code(
    request: Request, channel: Literal["email", "mobile"], body: CodeEntry, who: Session,
    key: IdempotencyKey = None,
) -> Response:
    """Enter the code: 5 wrong tries lock it (request a new one)."""
    await _limit_codes(request, who)
    return await _ask(
        request,
        _portal(request)[1],
        VerificationSubjects.CONFIRM_CODE,
        {"caller": who, "channel": channel, "code": body.code, **_meta(who["contact_id"], key)},
    )


@router.get("/verify/email/link", response_model=Verified, responses=ERRORS, summary="The e-mail's link")
async def confirm_link(
    request: Request,
    verification_id: Annotated[UUID, Query()],
    code: Annotated[str, Query(min_length=1, max_length=20)],
    key: IdempotencyKey = None,
) -> Response:
    """Confirm an e-mail by the link in the code's e-mail (no session needed)."""
    kit, verification = _portal(request)
    settings = get_runtime(request).settings
    await kit.limiter.hit(
        limit_key("link-ip", _ip(request) or "unknown"),
        limit=settings.portal_code_entries_per_contact,
        window_s=settings.portal_code_window_s,
        what="code entries from this address",
    )
    return await _ask(
        request,
        verification,
        VerificationSubjects.CONFIRM_LINK,
        # no session here: the key is scoped to the verification (whose contact the service knows)
        {"verification_id": str(verification_id), "code": code, **_meta(str(verification_id), key)},
    )


@router.post(
    "/clis",
    response_model=CodeSent,
    responses={**ERRORS, 429: RATE_DOC, 503: _doc("No switch.")},
    summary="Start a CLI test call",
)
async def start_cli(request: Request, body: CliStart, who: Session, key: IdempotencyKey = None) -> Response:
    """Ask the switch to call the number and speak a code."""
    return await _ask(
        request, _portal(request)[1], VerificationSubjects.START_CLI,
        {"caller": who, "number": body.number, **_meta(who["contact_id"], key)},
    )


@router.post(
    "/clis/{number}/confirm",
    response_model=Verified,
    responses={**ERRORS, 429: RATE_DOC},
    summary="Confirm a CLI test call's code",
)
async def confirm_cli(
    request: Request, number: str, body: CodeEntry, who: Session, key: IdempotencyKey = None
) -> Response:
    """Enter the code the test call spoke; the CLI joins the customer's approved CLIs."""
    await _limit_codes(request, who)
    return await _ask(
        request,
        _portal(request)[1],
        VerificationSubjects.CONFIRM_CLI,
        {"caller": who, "number": number, "code": body.code, **_meta(who["contact_id"], key)},
    )


async def _limit_codes(request: Request, who: dict[str, Any]) -> None:
    kit, _ = _portal(request)
    settings = get_runtime(request).settings
    await kit.limiter.hit(
        limit_key("codes", who["contact_id"]),
        limit=settings.portal_code_entries_per_contact,
        window_s=settings.portal_code_window_s,
        what="code entries",
    )
