"""E-mail and SMS settings (admin only): secrets write-only, test messages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.notifier import (
    EmailSettings,
    EmailSettingsWrite,
    NotifierSubjects,
    SmsSettings,
    SmsSettingsWrite,
    TestMessage,
    TestResult,
)

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, expected_version, require
from gateway.entrypoints.messages_api import notifier
from gateway.errors import COMMON_ERRORS, PRECONDITION_DOC

router = APIRouter(prefix="/v1/settings", tags=["settings"], responses=COMMON_ERRORS)

Admin = Annotated[Caller, Depends(caller(Permission.SETTINGS_WRITE))]
Version = Annotated[int | None, Depends(expected_version)]
# they name the SMTP server and Twilio account: read by admins only
READ_AS_ADMIN = [Depends(require(Permission.SETTINGS_WRITE, "read the e-mail and SMS settings"))]
TEST_TIMEOUT_S = 45.0


def _json(data: bytes) -> Response:
    head = json.loads(data)
    headers = {"ETag": f'"{head["version"]}"'} if "version" in head else {}
    return Response(data, media_type="application/json", headers=headers)


async def _ask(
    request: Request, subject: str, body: dict[str, Any], cid: str, timeout_s: float | None = None
) -> bytes:
    payload = json.dumps(body, separators=(",", ":"), default=str).encode()
    return await notifier(request, timeout_s).request(subject, payload, correlation_id=cid)


async def _put(
    request: Request, channel: str, body: EmailSettingsWrite | SmsSettingsWrite, who: Caller,
    version: int | None,
) -> Response:
    """A channel's settings replaced (with If-Match's version when given)."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    payload = {"meta": who.meta(), "expected_version": version, **changes}
    subject = NotifierSubjects.settings(channel)[1]
    return _json(await _ask(request, subject, payload, who.correlation_id))


async def _send_test(request: Request, channel: str, body: TestMessage, who: Caller) -> Response:
    """One message on a channel now, with the stored settings; the provider's answer."""
    data = await _ask(request, NotifierSubjects.settings(channel)[2], {"meta": who.meta(), "to": body.to},
                      who.correlation_id, TEST_TIMEOUT_S)
    return Response(data, media_type="application/json")


@router.get("/email", response_model=EmailSettings, dependencies=READ_AS_ADMIN, summary="E-mail settings")
async def get_email_settings(request: Request) -> Response:
    """From address and name, SMTP server and security; never the password."""
    return _json(await _ask(request, NotifierSubjects.GET_EMAIL_SETTINGS, {}, correlation_id(request)))


@router.put(
    "/email",
    response_model=EmailSettings,
    responses={412: PRECONDITION_DOC},
    summary="Change the e-mail settings",
)
async def put_email_settings(
    request: Request, body: EmailSettingsWrite, who: Admin, version: Version
) -> Response:
    """Replace the settings; the password is sealed at rest and never shown again."""
    return await _put(request, "email", body, who, version)


@router.post("/email/test", response_model=TestResult, summary="Send a test e-mail")
async def test_email(request: Request, body: TestMessage, who: Admin) -> Response:
    """Send one e-mail now with the stored settings; the answer says what the SMTP server said."""
    return await _send_test(request, "email", body, who)


@router.get("/sms", response_model=SmsSettings, dependencies=READ_AS_ADMIN, summary="SMS settings")
async def get_sms_settings(request: Request) -> Response:
    """Twilio account, sender number and API base URL; never the auth token."""
    return _json(await _ask(request, NotifierSubjects.GET_SMS_SETTINGS, {}, correlation_id(request)))


@router.put(
    "/sms",
    response_model=SmsSettings,
    responses={412: PRECONDITION_DOC},
    summary="Change the SMS settings",
)
async def put_sms_settings(
    request: Request, body: SmsSettingsWrite, who: Admin, version: Version
) -> Response:
    """Replace the settings; the auth token is sealed at rest and never shown again."""
    return await _put(request, "sms", body, who, version)


@router.post("/sms/test", response_model=TestResult, summary="Send a test SMS")
async def test_sms(request: Request, body: TestMessage, who: Admin) -> Response:
    """Send one SMS now with the stored settings; the answer says what Twilio said."""
    return await _send_test(request, "sms", body, who)
