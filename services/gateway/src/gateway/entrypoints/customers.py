"""Customer card routes: create, read, change, delete, change status."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.customer import CustomerCard, CustomerCreate, CustomerPatch, Subjects

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, expected_version, get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, PRECONDITION_DOC
from gateway.models import StatusChange

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=COMMON_ERRORS)

Writer = Annotated[Caller, Depends(caller(Permission.CUSTOMERS_WRITE))]
Version = Annotated[int | None, Depends(expected_version)]
PATH = "/v1/customers"


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, default=str)
    except TypeError:  # a lone surrogate (JSON can escape it, UTF-8 cannot carry it)
        return json.dumps(body, separators=(",", ":"), default=str).encode()


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what orjson refuses (a lone surrogate's escape) json reads
        return json.loads(data)


def create_command(who: Caller, body: CustomerCreate) -> bytes:
    """`customer.cmd.create`'s payload."""
    return _dumps({"meta": who.meta(), "customer": body.model_dump(mode="json", exclude_unset=True)})


def update_command(who: Caller, customer_id: UUID | str, version: int | None, body: CustomerPatch) -> bytes:
    """`customer.cmd.update`'s payload: only the fields present in the body."""
    return _dumps({"meta": who.meta(), "customer_id": str(customer_id), "expected_version": version,
                   "changes": body.model_dump(mode="json", exclude_unset=True)})


def get_query(customer_id: UUID | str) -> bytes:
    """`customer.query.get`'s payload."""
    return b'{"customer_id":"%s"}' % str(customer_id).encode()


def card_response(data: bytes, *, status_code: int = 200, location: bool = False) -> Response:
    """The service's card bytes as they are, with ETag (the version) and maybe Location."""
    head = _loads(data)
    headers = {"ETag": f'"{head["version"]}"'}
    if location:
        headers["Location"] = f"{PATH}/{head['id']}"
    return Response(data, status_code=status_code, media_type="application/json", headers=headers)


async def _command(request: Request, who: Caller, subject: str, body: dict[str, Any]) -> bytes:
    return await get_runtime(request).customers.request(
        subject, _dumps(body), correlation_id=who.correlation_id
    )


@router.post("", status_code=201, response_model=CustomerCard,
             responses={409: CONFLICT_DOC}, summary="Create a customer")
async def create_customer(request: Request, body: CustomerCreate, who: Writer) -> Response:
    """Create a customer card; 201 with the card and its Location."""
    data = await get_runtime(request).customers.request(
        Subjects.CREATE, create_command(who, body), correlation_id=who.correlation_id
    )
    return card_response(data, status_code=201, location=True)


@router.get("/{customer_id}", response_model=CustomerCard, responses={404: NOT_FOUND_DOC},
            dependencies=[Depends(require(Permission.CUSTOMERS_READ))], summary="Read a customer")
async def get_customer(request: Request, customer_id: UUID) -> Response:
    """One card (the hot path: the service's bytes are passed through unparsed but for the ETag)."""
    data = await get_runtime(request).customers.request(
        Subjects.GET, get_query(customer_id), correlation_id=correlation_id(request),
    )
    return card_response(data)


@router.patch("/{customer_id}", response_model=CustomerCard, summary="Change fields of a customer",
              responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC, 412: PRECONDITION_DOC})
async def update_customer(
    request: Request, customer_id: UUID, body: CustomerPatch, who: Writer, version: Version
) -> Response:
    """Change only the fields present in the body; `If-Match` guards against lost updates."""
    data = await get_runtime(request).customers.request(
        Subjects.UPDATE, update_command(who, customer_id, version, body), correlation_id=who.correlation_id
    )
    return card_response(data)


@router.delete("/{customer_id}", status_code=204, response_class=Response, summary="Delete a customer",
               responses={404: NOT_FOUND_DOC, 412: PRECONDITION_DOC})
async def delete_customer(request: Request, customer_id: UUID, who: Writer, version: Version) -> Response:
    """Delete a customer (its history stays in the audit log; its name becomes free)."""
    await _command(request, who, Subjects.DELETE, {
        "meta": who.meta(), "customer_id": str(customer_id), "expected_version": version,
    })
    return Response(status_code=204)


@router.post("/{customer_id}/status", response_model=CustomerCard, summary="Change the status",
             responses={404: NOT_FOUND_DOC, 412: PRECONDITION_DOC})
async def set_status(
    request: Request, customer_id: UUID, body: StatusChange, who: Writer, version: Version
) -> Response:
    """Change the status; `until` with `penalty`; a `reason` here is the change's reason."""
    data = await _command(request, who, Subjects.SET_STATUS, {
        "meta": who.meta(body.reason), "customer_id": str(customer_id), "expected_version": version,
        "status": body.status, "until": body.until.isoformat() if body.until else None,
    })
    return card_response(data)
