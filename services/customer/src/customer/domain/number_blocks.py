"""Number ranges and internal number blocks: the rules, pure.

A range is `start`, `block_size` and an optional `end`; block `k` holds the numbers
`start + k*block_size` .. `start + (k+1)*block_size - 1`. Which block is free is the
database's business (the `number_blocks` table, one row per assigned block); these rules
say what a block is, when a range may change, and what a customer's events are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.errors import ErrorCode, ErrorDetail, ServiceError

from customer.domain import events as ev
from customer.domain.state import CustomerState, SettingsState

Range = dict[str, int | None]


def block_bounds(rng: Range, index: int) -> tuple[int, int]:
    """First and last number of block `index` of a range."""
    start, size = int(rng["start"] or 0), int(rng["block_size"] or 1)
    first = start + index * size
    return first, first + size - 1


def last_index(rng: Range) -> int | None:
    """The index of the last whole block before `end` (None: no end)."""
    end = rng.get("end")
    if end is None:
        return None
    start, size = int(rng["start"] or 0), int(rng["block_size"] or 1)
    return (int(end) - start + 1) // size - 1


def require_range(settings: SettingsState) -> Range:
    """The range parameters, or a clear error when none are set."""
    if settings.number_range is None:
        raise ServiceError(
            ErrorCode.NUMBER_RANGE_NOT_SET,
            "no number range is set: an admin sets start and block_size first"
            " (PUT /v1/settings/number-range)",
        )
    return settings.number_range


def exhausted(rng: Range) -> ServiceError:
    """The error when every block of the range is taken."""
    return ServiceError(
        ErrorCode.NUMBER_RANGE_EXHAUSTED,
        f"every block of the number range {rng['start']}-{rng['end']} is assigned;"
        " release a block or raise the range's end",
    )


def decide_number_range(
    state: SettingsState, new: Range, *, assigned_blocks: int, highest_end: int | None
) -> list[ev.Event]:
    """Set the range; while blocks are assigned only `end` may move, and never below a block."""
    old = state.number_range
    if old == new:
        return []
    if assigned_blocks and old is not None:
        if (old["start"], old["block_size"]) != (new["start"], new["block_size"]):
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"{assigned_blocks} blocks are assigned: start and block_size cannot change"
                " until they are released (only end may move)",
                [ErrorDetail(field="start", message="fixed while blocks are assigned")],
            )
        end = new["end"]
        if end is not None and highest_end is not None and end < highest_end:
            raise ServiceError(
                ErrorCode.CONFLICT, f"a block ends at {highest_end}: end cannot be lower",
                [ErrorDetail(field="end", message=f"must be at least {highest_end}")],
            )
    return [ev.NumberRangeSet(**new, old=old)]


def decide_assign(state: CustomerState, block: dict[str, Any]) -> list[ev.Event]:
    """A live customer receives a block (its id, index, first and last number)."""
    return [ev.NumberBlockAssigned.model_validate(block)]


def decide_release(state: CustomerState, block_id: str) -> list[ev.Event]:
    """Release one of the customer's blocks; a block it does not hold is not found."""
    for block in state.number_blocks:
        if block["id"] == block_id:
            return [ev.NumberBlockReleased.model_validate(block)]
    raise ServiceError(
        ErrorCode.NOT_FOUND, f"customer {state.id} holds no number block {block_id}",
    )


def evolve_blocks(
    state: CustomerState, event: ev.NumberBlockAssigned | ev.NumberBlockReleased
) -> CustomerState:
    """The card's `number_blocks` list: `{id, start, end}` in number order."""
    blocks = [b for b in state.number_blocks if b["id"] != event.id]
    if isinstance(event, ev.NumberBlockAssigned):
        blocks.append({"id": event.id, "start": event.start, "end": event.end})
        blocks.sort(key=lambda b: int(b["start"]))
    return replace(state, number_blocks=tuple(blocks))
