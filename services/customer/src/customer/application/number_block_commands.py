"""Number-block commands as the batching core runs them: what they decide, the rows they write.

The handler (`application/number_blocks.py`) turns requests into these. A block assignment
carries the block chosen by its handler (the lowest free one); the append writes the
`number_blocks` rows in the same statement, and their primary key (the block's index) makes
two customers sharing a block impossible: the loser's command answers `conflict`
(BlockTaken) and its handler chooses again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from shared.contracts.customer import CommandMeta
from shared.eventstore import Fragment

from customer.domain import events as ev
from customer.domain.number_blocks import decide_assign, decide_release
from customer.domain.state import CustomerState


@dataclass(frozen=True)
class AssignBlockCmd:
    """Give the customer this (free) block: `{id, index, start, end}`."""

    customer_id: str
    meta: CommandMeta
    block: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class ReleaseBlockCmd:
    """Take one of the customer's blocks back."""

    customer_id: str
    meta: CommandMeta
    block_id: str
    expected_version: int | None = None


NumberBlockCommand = AssignBlockCmd | ReleaseBlockCmd
NUMBER_BLOCK_COMMANDS = (AssignBlockCmd, ReleaseBlockCmd)


def decide_number_block(cmd: NumberBlockCommand, state: CustomerState) -> list[ev.Event]:
    """The events of a block assignment or release against a live customer."""
    if isinstance(cmd, AssignBlockCmd):
        return decide_assign(state, cmd.block)
    return decide_release(state, cmd.block_id)


_ASSIGN_SQL = (
    "INSERT INTO number_blocks (block_index, id, customer_id, first_number, last_number)"
    " SELECT block_index, id, customer_id, first_number, last_number"
    " FROM jsonb_to_recordset({}::jsonb) AS x(block_index int, id uuid, customer_id uuid,"
    " first_number bigint, last_number bigint)"
)
# a released block, and every block of a deleted customer, is free again
_FREE_SQL = (
    "DELETE FROM number_blocks WHERE id = ANY({}::uuid[]) OR customer_id = ANY({}::uuid[])"
)


def block_fragments(events: Sequence[tuple[str, ev.Event]]) -> list[Fragment]:
    """The `number_blocks` rows that these (stream, event) pairs add or free, for the append."""
    assigned = [
        {"block_index": e.index, "id": e.id, "customer_id": sid,
         "first_number": e.start, "last_number": e.end}
        for sid, e in events if isinstance(e, ev.NumberBlockAssigned)
    ]
    released = [e.id for _, e in events if isinstance(e, ev.NumberBlockReleased)]
    deleted = [sid for sid, e in events if isinstance(e, ev.CustomerDeleted)]
    fragments = []
    if released or deleted:
        fragments.append(Fragment(_FREE_SQL, [released, deleted]))
    if assigned:
        fragments.append(Fragment(_ASSIGN_SQL, [orjson.dumps(assigned).decode()]))
    return fragments
