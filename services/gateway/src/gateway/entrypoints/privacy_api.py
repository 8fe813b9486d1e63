"""Erasure of personal data (product.md section 15): admin routes with a reason, audited."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.base import Strict
from shared.contracts.customer import CustomerCard
from shared.contracts.fields import Reason
from shared.contracts.privacy import PrivacySubjects

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, get_runtime
from gateway.entrypoints.customers import card_response
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC

router = APIRouter(prefix="/v1/customers", tags=["privacy"], responses=COMMON_ERRORS)

ERASE_DOCS: dict[int | str, dict[str, object]] = {404: NOT_FOUND_DOC, 409: CONFLICT_DOC}
Eraser = Annotated[Caller, Depends(caller(Permission.PERSONAL_DATA_ERASE))]


class EraseRequest(Strict):
    """Why the personal data is erased (kept in the audit log, with who and when)."""

    reason: Reason


async def _erase(request: Request, who: Caller, reason: str, subject: str, body: dict[str, str]) -> Response:
    payload = json.dumps({"meta": who.meta(reason), **body}).encode()
    data = await get_runtime(request).customers.request(subject, payload, correlation_id=who.correlation_id)
    return card_response(data)


@router.post("/{customer_id}/erase", response_model=CustomerCard, responses=ERASE_DOCS,
             summary="Erase a deleted customer's personal data")
async def erase_customer(request: Request, customer_id: UUID, body: EraseRequest, who: Eraser) -> Response:
    """Destroy the keys of the card's and every contact's personal data (admin; the customer must be
    deleted, else 409). Those fields read `"[erased]"` everywhere from then on."""
    return await _erase(request, who, body.reason, PrivacySubjects.ERASE_CUSTOMER,
                        {"customer_id": str(customer_id)})


@router.post("/{customer_id}/contacts/{contact_id}/erase", response_model=CustomerCard,
             responses=ERASE_DOCS, summary="Erase a removed contact's personal data")
async def erase_contact(
    request: Request, customer_id: UUID, contact_id: UUID, body: EraseRequest, who: Eraser
) -> Response:
    """Destroy the key of a removed contact's personal data (admin; a live contact is 409)."""
    return await _erase(request, who, body.reason, PrivacySubjects.ERASE_CONTACT,
                        {"customer_id": str(customer_id), "contact_id": str(contact_id)})
