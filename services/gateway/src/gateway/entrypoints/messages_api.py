"""Messages: operators send e-mail or SMS to customers' contacts; anyone with read access sees delivery."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from shared.contracts.base import Strict
from shared.contracts.customer import BoardFilter
from shared.contracts.notifier import NotifierSubjects
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


class MessageSend(Strict):
    """An e-mail (`subject`, `body`) or SMS (`body`) to the contacts of customers chosen by ids or filter.

    Placeholders: `{{customer.name}}`, `{{customer.id}}`, `{{contact.name}}`, `{{contact.email}}`,
    `{{contact.mobile}}`, `{{contact.phone}}`, `{{contact.contact_type}}`, `{{contact.id}}`.
    """

    channel: Literal["email", "sms"]
    subject: str | None = None
    body: str
    customer_ids: list[UUID] | None = None
    filter: BoardFilter | None = None


class SkippedCustomer(BaseModel):
    """A selected customer with no recipient."""

    customer_id: UUID
    reason: str


class MessageQueued(BaseModel):
    """What a send answers."""

    message_id: UUID
    recipients: int
    skipped: list[SkippedCustomer]


class RecipientDelivery(BaseModel):
    """One recipient's delivery state."""

    delivery_id: UUID
    customer_id: UUID | None
    contact_id: UUID | None
    to: str
    state: Literal["queued", "sending", "retrying", "sent", "failed"]
    attempts: int
    last_error: str | None
    dead_lettered: bool
    unconfirmed: bool
    sent_at: datetime | None
    updated_at: datetime


class MessageDelivery(BaseModel):
    """A message, its counts by state, and a page of its recipients."""

    message_id: UUID
    kind: Literal["broadcast", "system"]
    channel: Literal["email", "sms"]
    subject: str | None
    template: str | None
    created_at: datetime
    recipients: int
    skipped: list[SkippedCustomer]
    counts: dict[str, int]
    items: list[RecipientDelivery]
    next_cursor: str | None
    total: int


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


@router.post(
    "",
    status_code=202,
    response_model=MessageQueued,
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
    "/{message_id}",
    response_model=MessageDelivery,
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
