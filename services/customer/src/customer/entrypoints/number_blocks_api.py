"""The customer service's subjects for the number range and internal number blocks."""

from __future__ import annotations

from shared.contracts.customer import CustomerCard
from shared.contracts.number_blocks import (
    AssignedBlock,
    AssignNumberBlock,
    GetNumberRange,
    NumberBlockSubjects,
    NumberOwner,
    NumberOwnerQuery,
    NumberRangeSettings,
    ReleaseNumberBlock,
    SetNumberRange,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.application.number_blocks import NumberBlocks


def number_block_routes(*, blocks: NumberBlocks) -> list[Route]:
    """Every number-range and number-block subject with its models and handler."""

    async def get_range(_: GetNumberRange) -> bytes:
        return await blocks.get_range()

    async def set_range(body: SetNumberRange) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await blocks.set_range(body)

    async def assign(body: AssignNumberBlock) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await blocks.assign(body)

    async def release(body: ReleaseNumberBlock) -> bytes:
        body.meta.correlation_id = body.meta.correlation_id or current_correlation_id()
        return await blocks.release(body)

    async def owner(body: NumberOwnerQuery) -> bytes:
        return await blocks.owner(body)

    s = NumberBlockSubjects
    return [
        Route(s.GET_RANGE, GetNumberRange, NumberRangeSettings, get_range,
              "The number range parameters (nulls until set)."),
        Route(s.SET_RANGE, SetNumberRange, NumberRangeSettings, set_range,
              "Set start, block_size and optional end; while blocks are assigned only end may move"
              " (never below an assigned block)."),
        Route(s.ASSIGN, AssignNumberBlock, AssignedBlock, assign,
              "Assign the lowest free block of the range to a customer, atomically (number_range_not_set,"
              " number_range_exhausted). Idempotent by meta.command_id."),
        Route(s.RELEASE, ReleaseNumberBlock, CustomerCard, release,
              "Release one of a customer's blocks; it is free again."),
        Route(s.OWNER, NumberOwnerQuery, NumberOwner, owner,
              "Which customer owns an internal number (customer_id null when no block holds it)."),
    ]
