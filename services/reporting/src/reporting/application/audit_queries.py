"""Reading the audit log (as-of is the customer service's: it owns the events).

The log keeps each event's personal values as they travel, encrypted; they are opened here, on
read, with keys asked of the customer service (`shared.data_keys`): once a subject is erased its
values read `"[erased]"`, and the log itself never held a plaintext copy to drop.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from shared.contracts.reporting import AuditActor, AuditEntryOut, AuditPage, AuditQuery
from shared.personal_data import KeyProvider, reveal_all

from reporting.application import cursor as cursors

_FIELDS = (
    "event_id, occurred_at, customer_id, type, action, category, stream_id, version, actor_kind,"
    " actor_id, actor_name, ip, reason, correlation_id, causation_id, changes::text, data::text"
)


def _entry(row: asyncpg.Record, changes: Any, data: Any) -> AuditEntryOut:
    return AuditEntryOut(
        event_id=row["event_id"], occurred_at=row["occurred_at"], customer_id=row["customer_id"],
        type=row["type"], action=row["action"], category=row["category"],
        stream_id=row["stream_id"], version=row["version"],
        actor=AuditActor(kind=row["actor_kind"], id=row["actor_id"], name=row["actor_name"]),
        ip=row["ip"], reason=row["reason"], correlation_id=row["correlation_id"],
        causation_id=row["causation_id"], changes=changes, data=data,
    )


class AuditQueries:
    """Queries over the live audit tables."""

    def __init__(self, pool: asyncpg.Pool, keys: KeyProvider | None = None) -> None:
        self.pool = pool
        self.keys = keys  # None: values are shown as stored

    async def page(self, query: AuditQuery) -> AuditPage:
        """Entries matching the filters, newest first, with keyset paging."""
        where: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.customer_id is not None:
            where.append(f"customer_id = {arg(str(query.customer_id))}")
        if query.since is not None:
            where.append(f"occurred_at >= {arg(query.since)}")
        if query.until is not None:
            where.append(f"occurred_at < {arg(query.until)}")
        if query.actor:
            where.append(f"(actor_name = {arg(query.actor)} OR actor_id = ${len(args)})")
        if query.type:
            where.append(f"type = ANY({arg(query.type)}::text[])")
        filters = " AND ".join(where) or "true"
        n_filter_args = len(args)
        page_where = filters
        if query.cursor:
            moment, key = cursors.decode(query.cursor)
            page_where += f" AND (occurred_at, event_id) < ({arg(moment)}, {arg(key)}::uuid)"
        limit = arg(query.limit + 1)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                f"SELECT {_FIELDS} FROM audit_log WHERE {page_where}"
                f" ORDER BY occurred_at DESC, event_id DESC LIMIT {limit}", *args,
            )
            total = await conn.fetchval(
                f"SELECT count(*) FROM audit_log WHERE {filters}", *args[:n_filter_args]
            )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        values = [[json.loads(r["changes"]), json.loads(r["data"]) if r["data"] is not None else None]
                  for r in rows]
        if self.keys is not None:
            values = await reveal_all(values, self.keys)
        items = [_entry(r, changes, data) for r, (changes, data) in zip(rows, values, strict=True)]
        next_cursor = cursors.encode(items[-1].occurred_at, str(items[-1].event_id)) if more else None
        return AuditPage(items=items, next_cursor=next_cursor, total=total)

