"""Messages: operators send e-mail or SMS to customers' contacts; anyone with read access sees delivery."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from shared.contracts.notifier import (
    Channel,
    DeliveryStatus,
    MessagePage,
    MessageSend,
    MessageStatus,
    NotifierSubjects,
    SendReply,
)
from shared.errors import ErrorReply

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.errors import COMMON_ERRORS, NOT_FOUND_DOC
from gateway.service_client import ServiceClient

router = APIRouter(prefix="/v1/messages", tags=["messages"], responses=COMMON_ERRORS)

SEND = NotifierSubjects.SEND
GET = NotifierSubjects.GET_MESSAGE
SEND_TIMEOUT_S = 60.0  # resolving tens of thousands of recipients takes a while
CONFLICT_SETTINGS_DOC: dict[str, Any] = {
    "model": ErrorReply,
    "description": "The channel has no settings yet (PUT /v1/settings/email or /sms first).",
}


def notifier(request: Request, timeout_s: float | None = None) -> ServiceClient:
    """A client for the notifier service on the gateway's NATS connection."""
    runtime = get_runtime(request)
    return ServiceClient(
        runtime.nc, service="notifier", timeout_s=timeout_s or runtime.settings.request_timeout_s
    )


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


@router.post(
    "",
    status_code=202,
    response_model=SendReply,
    summary="Send an e-mail or SMS to customers",
    responses={409: CONFLICT_SETTINGS_DOC},
)
async def send_message(
    request: Request,
    body: MessageSend,
    who: Annotated[Caller, Depends(caller(Permission.CUSTOMERS_WRITE))],
) -> Response:
    """Queue one copy per contact address; 202 with how many were queued and who was skipped."""
    payload = {"meta": who.meta(), **body.model_dump(mode="json", exclude_none=True)}
    data = await notifier(request, SEND_TIMEOUT_S).request(
        SEND, _dumps(payload), correlation_id=who.correlation_id
    )
    message_id = json.loads(data)["message_id"]
    return Response(
        data,
        status_code=202,
        media_type="application/json",
        headers={"Location": f"/v1/messages/{message_id}"},
    )


@router.get(
    "",
    response_model=MessagePage,
    dependencies=[Depends(require(Permission.CUSTOMERS_READ))],
    summary="Sent messages",
)
async def list_messages(
    request: Request,
    customer_id: UUID | None = None,
    channel: Channel | None = None,
    state: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Broadcasts and system messages newest first, with counts by state; `customer_id` keeps those
    with a recipient of that customer, `state` those with a recipient in that state."""
    body = {"customer_id": customer_id, "channel": channel, "state": state, "limit": limit, "cursor": cursor}
    data = await notifier(request).request(
        NotifierSubjects.LIST_MESSAGES, _dumps(body), correlation_id=correlation_id(request))
    return Response(data, media_type="application/json")


@router.get(
    "/{message_id}",
    response_model=MessageStatus,
    responses={404: NOT_FOUND_DOC},
    dependencies=[Depends(require(Permission.CUSTOMERS_READ))],
    summary="Delivery status of a message",
)
async def get_message(
    request: Request,
    message_id: UUID,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Each recipient's state (queued, sending, retrying, sent, failed with the reason) and attempts."""
    body = {"message_id": str(message_id), "limit": limit, "cursor": cursor}
    data = await notifier(request).request(GET, _dumps(body), correlation_id=correlation_id(request))
    return Response(data, media_type="application/json")
