"""Contacts, passwords, approved CLIs and dial permission of a customer (operator routes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from shared.contracts.contacts import (
    E164,
    ContactCreate,
    ContactPatch,
    ContactSubjects,
    DialPermission,
    Password,
    PasswordChoice,
)
from shared.contracts.customer import CustomerCard
from shared.errors import ErrorCode, key_reused

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, expected_version, get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, PRECONDITION_DOC, ApiError

router = APIRouter(prefix="/v1/customers", tags=["contacts"], responses=COMMON_ERRORS)

Writer = Annotated[Caller, Depends(caller(Permission.CUSTOMERS_WRITE))]
Version = Annotated[int | None, Depends(expected_version)]


class ContactAddRequest(ContactCreate):
    """A new contact, with a generated password sent by e-mail (default) or one typed here."""

    auto_generate_password: bool = True
    password: Password | None = None


class Contact(BaseModel):
    """A contact as operators see it (never a password)."""

    id: UUID
    name: str
    email: str
    mobile: str | None
    phone: str | None
    contact_type: str
    public_notes: str
    private_notes: str
    ip_whitelist: list[str]
    email_verified: bool
    mobile_verified: bool


class CliRequest(BaseModel):
    """An approved CLI to add by hand."""

    number: E164 = Field(description="E.164, e.g. +14155550123")


def _password_fields(choice: PasswordChoice | ContactAddRequest) -> dict[str, Any]:
    if choice.password is not None:
        return {"auto_generate_password": False, "password": choice.password.get_secret_value()}
    if not choice.auto_generate_password:
        raise ApiError(
            ErrorCode.VALIDATION, "give a `password` (12+ characters) or set auto_generate_password"
        )
    return {"auto_generate_password": True}


def _contact_in(card: dict[str, Any], match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The contact the command was about; missing only when the reply is the stored answer of
    another request with the same Idempotency-Key, stored before the customer service kept
    request fingerprints (it answers that conflict itself now)."""
    found = next((c for c in card.get("contacts", []) if match(c)), None)
    if found is None:
        raise key_reused()
    return dict(found)


async def _command(request: Request, who: Caller, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    data = await get_runtime(request).customers.request(
        subject,
        json.dumps({"meta": who.meta(), **body}, default=str).encode(),
        correlation_id=who.correlation_id,
    )
    card: dict[str, Any] = json.loads(data)
    return card


async def _cli_command(
    request: Request, who: Caller, subject: str, customer_id: UUID, number: str, version: int | None
) -> Response:
    """Approve or remove a CLI: the card, with its version as the ETag."""
    card = await _command(request, who, subject,
                          {"customer_id": str(customer_id), "number": number, "expected_version": version})
    return Response(json.dumps(card), media_type="application/json", headers={"ETag": f'"{card["version"]}"'})


def _contact_response(card: dict[str, Any], contact: dict[str, Any], status_code: int = 200) -> Response:
    headers = {
        "ETag": f'"{card["version"]}"',
        "Location": f"/v1/customers/{card['id']}/contacts/{contact['id']}",
    }
    return Response(
        json.dumps(contact), status_code=status_code, media_type="application/json", headers=headers
    )


@router.post(
    "/{customer_id}/contacts",
    status_code=201,
    response_model=Contact,
    summary="Add a contact",
    responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC, 412: PRECONDITION_DOC},
)
async def add_contact(
    request: Request, customer_id: UUID, body: ContactAddRequest, who: Writer, version: Version
) -> Response:
    """Add a contact; its e-mail (the portal login) must be unused (409 `email_taken`)."""
    contact = body.model_dump(mode="json", exclude={"auto_generate_password", "password"})
    card = await _command(
        request,
        who,
        ContactSubjects.ADD,
        {
            "customer_id": str(customer_id),
            "expected_version": version,
            "contact": contact,
            **_password_fields(body),
        },
    )
    added = _contact_in(card, lambda c: c["email"].lower() == body.email.lower())
    return _contact_response(card, added, 201)


@router.patch(
    "/{customer_id}/contacts/{contact_id}",
    response_model=Contact,
    summary="Change a contact",
    responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC, 412: PRECONDITION_DOC},
)
async def update_contact(
    request: Request, customer_id: UUID, contact_id: UUID, body: ContactPatch, who: Writer, version: Version
) -> Response:
    """Change fields (operators may set email_verified / mobile_verified by hand; the audit log says who)."""
    card = await _command(
        request,
        who,
        ContactSubjects.UPDATE,
        {
            "customer_id": str(customer_id),
            "contact_id": str(contact_id),
            "expected_version": version,
            "changes": body.model_dump(mode="json", exclude_unset=True),
        },
    )
    return _contact_response(card, _contact_in(card, lambda c: c["id"] == str(contact_id)))


@router.delete(
    "/{customer_id}/contacts/{contact_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a contact",
    responses={404: NOT_FOUND_DOC, 412: PRECONDITION_DOC},
)
async def remove_contact(
    request: Request, customer_id: UUID, contact_id: UUID, who: Writer, version: Version
) -> Response:
    """Remove a contact; its e-mail becomes free and it can no longer log in."""
    await _command(
        request,
        who,
        ContactSubjects.REMOVE,
        {
            "customer_id": str(customer_id),
            "contact_id": str(contact_id),
            "expected_version": version,
        },
    )
    return Response(status_code=204)


@router.post(
    "/{customer_id}/contacts/{contact_id}/password",
    status_code=204,
    response_class=Response,
    summary="Reset a contact's password",
    responses={404: NOT_FOUND_DOC},
)
async def reset_password(
    request: Request, customer_id: UUID, contact_id: UUID, body: PasswordChoice, who: Writer
) -> Response:
    """Generate a new password and e-mail it (default), or set the one given (12+ characters)."""
    await _command(
        request,
        who,
        ContactSubjects.SET_PASSWORD,
        {
            "customer_id": str(customer_id),
            "contact_id": str(contact_id),
            **_password_fields(body),
        },
    )
    return Response(status_code=204)


@router.post(
    "/{customer_id}/approved-clis",
    response_model=CustomerCard,
    summary="Approve a CLI by hand",
    responses={404: NOT_FOUND_DOC, 412: PRECONDITION_DOC},
)
async def approve_cli(
    request: Request, customer_id: UUID, body: CliRequest, who: Writer, version: Version
) -> Response:
    """Add a CLI to approved_clis without a test call (recorded as the operator's)."""
    return await _cli_command(request, who, ContactSubjects.APPROVE_CLI, customer_id, body.number, version)


@router.delete(
    "/{customer_id}/approved-clis/{number}",
    response_model=CustomerCard,
    summary="Remove an approved CLI",
    responses={404: NOT_FOUND_DOC, 412: PRECONDITION_DOC},
)
async def remove_cli(
    request: Request, customer_id: UUID, number: str, who: Writer, version: Version
) -> Response:
    """Take a CLI off approved_clis."""
    return await _cli_command(request, who, ContactSubjects.REMOVE_CLI, customer_id, number, version)


@router.get(
    "/{customer_id}/dial-permission",
    response_model=DialPermission,
    summary="Dial permission",
    dependencies=[Depends(require(Permission.CUSTOMERS_READ))],
)
async def dial_permission(
    request: Request,
    customer_id: UUID,
    cli: Annotated[str | None, Query(max_length=40, description="The caller ID the call would use")] = None,
) -> Response:
    """What the switch would be told: allowed or not, every reason, and the limits."""
    data = await get_runtime(request).customers.request(
        ContactSubjects.DIAL_PERMISSION,
        json.dumps({"customer_id": str(customer_id), "cli": cli}).encode(),
        correlation_id=correlation_id(request),
    )
    return Response(data, media_type="application/json")
