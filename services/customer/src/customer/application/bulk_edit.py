"""Bulk edit and bulk delete: one command per customer through the batching core.

Every customer gets its own events, decided against its own state with the same rules as
a single change; the commands are submitted together, so the core packs them into a few
statements. They share the operation's correlation id, and with an idempotency key each
customer's command gets its own (`<key>:<customer id>`), so a retried bulk request changes
nothing twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
from shared.contracts.bulk import BulkDelete, BulkUpdate
from shared.contracts.customer import CommandMeta, DeleteCustomer

from customer.application.commands import Command, CustomerCommands, EditCustomerCmd
from customer.projections import board


def _per_customer(meta: CommandMeta, customer_id: str) -> CommandMeta:
    if meta.command_id is None:
        return meta
    return meta.model_copy(update={"command_id": f"{meta.command_id}:{customer_id}"})


def _result(customer_id: str, reply: bytes) -> dict[str, Any]:
    parsed = orjson.loads(reply)
    if "error" in parsed:
        return {"id": customer_id, "ok": False, "version": None, "error": parsed["error"]}
    return {"id": customer_id, "ok": True, "version": parsed["version"], "error": None}


class BulkEditor:
    """Runs bulk edits and deletes; answers per-customer results."""

    def __init__(self, commands: CustomerCommands, pool: asyncpg.Pool) -> None:
        self.commands = commands
        self.pool = pool

    async def _run(self, meta: CommandMeta, commands: list[tuple[str, Command]]) -> list[dict[str, Any]]:
        replies = await asyncio.gather(*[self.commands.handle(c) for _, c in commands])
        return [_result(cid, reply) for (cid, _), reply in zip(commands, replies, strict=True)]

    async def update(self, req: BulkUpdate) -> bytes:
        """Edit the listed customers, or one page of those the filter matches."""
        changes = req.set.model_dump(mode="json", exclude_unset=True)
        next_cursor: str | None = None
        matched: int | None = None
        if req.ids is not None:
            ids = list(dict.fromkeys(str(i) for i in req.ids))
        else:
            assert req.filter is not None
            page = orjson.loads(await board.list_customers(self.pool, req.filter.page(req.cursor, req.limit)))
            ids = [item["id"] for item in page["items"]]
            next_cursor, matched = page["next_cursor"], page["total"]
        commands: list[tuple[str, Command]] = [
            (cid, EditCustomerCmd(cid, _per_customer(req.meta, cid), changes,
                                  list(req.add_tags), list(req.remove_tags)))
            for cid in ids
        ]
        results = await self._run(req.meta, commands)
        return orjson.dumps({"correlation_id": req.meta.correlation_id, "results": results,
                             "next_cursor": next_cursor, "matched": matched})

    async def delete(self, req: BulkDelete) -> bytes:
        """Delete the listed customers."""
        ids = list(dict.fromkeys(str(i) for i in req.ids))
        commands: list[tuple[str, Command]] = [
            (cid, DeleteCustomer(meta=_per_customer(req.meta, cid), customer_id=cid))
            for cid in ids
        ]
        results = await self._run(req.meta, commands)
        return orjson.dumps({"correlation_id": req.meta.correlation_id, "results": results,
                             "next_cursor": None, "matched": None})
