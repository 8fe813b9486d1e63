"""Number range settings (admin) and a customer's internal number blocks (operator)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Request, Response
from shared.contracts.customer import CustomerCard
from shared.contracts.fields import InternalNumber
from shared.contracts.number_blocks import (
    AssignedBlock,
    NumberBlockSubjects,
    NumberOwner,
    NumberRange,
    NumberRangeSettings,
)

from gateway.auth.roles import Permission
from gateway.dependencies import Caller, caller, correlation_id, get_runtime, require
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC

settings_router = APIRouter(prefix="/v1/settings", tags=["settings"], responses=COMMON_ERRORS)
blocks_router = APIRouter(prefix="/v1", tags=["number blocks"], responses=COMMON_ERRORS)
Writer = Annotated[Caller, Depends(caller(Permission.CUSTOMERS_WRITE))]
Admin = Annotated[Caller, Depends(caller(Permission.SETTINGS_WRITE))]
S = NumberBlockSubjects


def _json(data: bytes, status_code: int = 200) -> Response:
    return Response(data, status_code=status_code, media_type="application/json")


@settings_router.get(
    "/number-range",
    response_model=NumberRangeSettings,
    summary="Number range parameters",
    dependencies=[Depends(require(Permission.SETTINGS_READ))],
)
async def get_number_range(request: Request) -> Response:
    """`start`, `block_size` and `end` (nulls until an admin sets them)."""
    return _json(
        await get_runtime(request).customers.request(
            S.GET_RANGE, b"{}", correlation_id=correlation_id(request)
        )
    )


@settings_router.put(
    "/number-range",
    response_model=NumberRangeSettings,
    responses={409: CONFLICT_DOC},
    summary="Set the number range parameters (admin)",
)
async def put_number_range(request: Request, body: NumberRange, who: Admin) -> Response:
    """Blocks are `block_size` numbers from `start`; while blocks are assigned only `end` may move."""
    return _json(
        await get_runtime(request).customers.request(
            S.SET_RANGE, _dumps({"meta": who.meta(), **body.model_dump()}), correlation_id=who.correlation_id
        )
    )


@blocks_router.post(
    "/customers/{customer_id}/number-blocks",
    status_code=201,
    response_model=AssignedBlock,
    responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC},
    summary="Assign the next free number block",
)
async def assign_block(request: Request, customer_id: UUID, who: Writer) -> Response:
    """The lowest free block of the range, atomically (409: no range set, or range exhausted)."""
    data = await get_runtime(request).customers.request(
        S.ASSIGN,
        _dumps({"meta": who.meta(), "customer_id": str(customer_id)}),
        correlation_id=who.correlation_id,
    )
    return _json(data, 201)


@blocks_router.delete(
    "/customers/{customer_id}/number-blocks/{block_id}",
    response_model=CustomerCard,
    responses={404: NOT_FOUND_DOC},
    summary="Release a number block",
)
async def release_block(request: Request, customer_id: UUID, block_id: UUID, who: Writer) -> Response:
    """The block is free again; answers the card without it."""
    return _json(
        await get_runtime(request).customers.request(
            S.RELEASE,
            _dumps({"meta": who.meta(), "customer_id": str(customer_id), "block_id": str(block_id)}),
            correlation_id=who.correlation_id,
        )
    )


@blocks_router.get(
    "/number-blocks/owner",
    response_model=NumberOwner,
    summary="Who owns an internal number",
    dependencies=[Depends(require(Permission.CUSTOMERS_READ))],
)
async def number_owner(request: Request, number: InternalNumber) -> Response:
    """The customer whose block holds `number` (`customer_id` null when none does)."""
    return _json(
        await get_runtime(request).customers.request(
            S.OWNER, _dumps({"number": number}), correlation_id=correlation_id(request)
        )
    )


def _dumps(body: object) -> bytes:
    return orjson.dumps(body)


router = APIRouter()
router.include_router(settings_router)
router.include_router(blocks_router)
