"""Number range settings and block assignment: choose the lowest free block, let the core append it.

Assignments of one process are serialized (an asyncio lock): each one reads the lowest free
block, and its command appends the event and the `number_blocks` row in one statement. A
failed assignment writes nothing, so the block stays the lowest free one for the next.
Replicas race only through the table's primary key: the loser chooses again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import structlog
from shared.contracts.number_blocks import (
    AssignNumberBlock,
    NumberOwnerQuery,
    ReleaseNumberBlock,
    SetNumberRange,
)
from shared.errors import ErrorCode, ServiceError, key_reused
from shared.idempotency import fingerprint
from shared.ids import new_id

from customer.application.commands import CustomerCommands
from customer.application.number_block_commands import AssignBlockCmd, ReleaseBlockCmd
from customer.application.settings import SettingsService
from customer.domain.errors import BlockTaken
from customer.domain.number_blocks import (
    block_bounds,
    decide_number_range,
    exhausted,
    last_index,
    require_range,
)
from customer.domain.state import SettingsState

log = structlog.get_logger(__name__)

ATTEMPTS = 20
_TAKEN = b'"%s"' % BlockTaken.TYPE.encode()  # in the reply of an assignment that lost its block
BLOCK_IDS = uuid.UUID("6f1b1c8e-1d51-4c44-9a6e-6a0d8b1f0b5e")  # namespace: block id per command id

# the lowest index with no row: 0 if free, else the first hole after a taken block
LOWEST_FREE_SQL = """
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM number_blocks WHERE block_index = 0) THEN 0
ELSE (SELECT min(b.block_index) + 1 FROM number_blocks b
      WHERE NOT EXISTS (SELECT 1 FROM number_blocks c WHERE c.block_index = b.block_index + 1))
END
"""


def range_reply(state: SettingsState) -> bytes:
    """The range parameters as the API answers them."""
    rng: dict[str, Any] = state.number_range or {"start": None, "block_size": None, "end": None}
    return orjson.dumps({**rng, "version": state.number_range_version})


class NumberBlocks:
    """Range settings, assignment, release, and who owns a number."""

    def __init__(self, commands: CustomerCommands, settings: SettingsService, pool: asyncpg.Pool) -> None:
        self.commands = commands
        self.settings = settings
        self.pool = pool
        self._lock = asyncio.Lock()

    async def get_range(self) -> bytes:
        """The current range parameters (nulls until set)."""
        return range_reply(await self.settings.fresh())

    async def set_range(self, cmd: SetNumberRange) -> bytes:
        """Set the range; start and block_size stay fixed while any block is assigned."""
        new: dict[str, int | None] = {"start": cmd.start, "block_size": cmd.block_size, "end": cmd.end}
        async with self._lock:  # no assignment of this process slips between the check and the change
            row = await self.pool.fetchrow(
                "SELECT count(*) AS n, max(last_number) AS highest FROM number_blocks"
            )
            state = await self.settings.change(
                lambda s: decide_number_range(
                    s, new, assigned_blocks=int(row["n"]), highest_end=row["highest"]
                ),
                cmd.meta,
            )
        return range_reply(state)

    async def assign(self, cmd: AssignNumberBlock) -> bytes:
        """Give the customer the lowest free block; answer the block and the card."""
        block_id = (
            str(uuid.uuid5(BLOCK_IDS, cmd.meta.command_id)) if cmd.meta.command_id else str(new_id())
        )
        # one assignment at a time across replicas (a session advisory lock): racing replicas
        # would each take the same lowest block and all but one start again, over and over
        async with self._lock, self.pool.acquire() as guard:
            await guard.execute("SELECT pg_advisory_lock(hashtext('customer:number-blocks'))")
            try:
                return await self._assign(cmd, block_id)
            finally:
                await guard.execute("SELECT pg_advisory_unlock(hashtext('customer:number-blocks'))")

    async def _assign(self, cmd: AssignNumberBlock, block_id: str) -> bytes:
        """The lowest free block, retried while another writer takes the one just chosen."""
        mine = await self.pool.fetchrow(  # a retried key whose block is still assigned: that block
            "SELECT block_index, first_number, last_number FROM number_blocks WHERE id = $1", block_id)
        if mine is not None:
            block = {"id": block_id, "index": mine["block_index"], "start": mine["first_number"],
                     "end": mine["last_number"]}
            reply = await self.commands.handle(AssignBlockCmd(str(cmd.customer_id), cmd.meta, block),
                                               request_fingerprint=fingerprint(cmd))
            return _with_block(reply, block_id)
        for _ in range(ATTEMPTS):
            rng = require_range(await self.settings.fresh())
            index = int(await self.pool.fetchval(LOWEST_FREE_SQL))
            last = last_index(rng)
            if last is not None and index > last:
                raise exhausted(rng)
            start, end = block_bounds(rng, index)
            block = {"id": block_id, "index": index, "start": start, "end": end}
            reply = await self.commands.handle(  # the block chosen may differ on a retry
                AssignBlockCmd(str(cmd.customer_id), cmd.meta, block),
                request_fingerprint=fingerprint(cmd),
            )
            if _TAKEN in reply:
                log.info("number_block_taken_retrying", index=index)
                continue
            return _with_block(reply, block_id)
        raise ServiceError(ErrorCode.CONFLICT, "number blocks are being assigned too fast; retry")

    async def release(self, cmd: ReleaseNumberBlock) -> bytes:
        """Take a block back; answer the card."""
        return await self.commands.handle(
            ReleaseBlockCmd(str(cmd.customer_id), cmd.meta, str(cmd.block_id))
        )

    async def owner(self, query: NumberOwnerQuery) -> bytes:
        """Which customer's block holds the number (nulls when none does)."""
        row = await self.pool.fetchrow(
            "SELECT id, customer_id, first_number, last_number FROM number_blocks"
            " WHERE int8range(first_number, last_number, '[]') @> $1::bigint",
            query.number,
        )
        if row is None:
            return orjson.dumps({"number": query.number, "customer_id": None, "block": None})
        block = {"id": str(row["id"]), "start": row["first_number"], "end": row["last_number"]}
        return orjson.dumps(
            {"number": query.number, "customer_id": str(row["customer_id"]), "block": block}
        )


def _with_block(reply: bytes, block_id: str) -> bytes:
    """`{block, customer}` from the core's card reply; an error reply passes through."""
    card = orjson.loads(reply)
    if "error" in card:
        return reply
    block = next((b for b in card["number_blocks"] if b["id"] == block_id), None)
    if block is None:  # the key's first answer (stored without a fingerprint) was another request
        raise key_reused()
    return b'{"block":%s,"customer":%s}' % (orjson.dumps(block), reply)
