"""A message's delivery status: counts by state and recipients by cursor."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg
from shared.contracts.notifier import (
    GetMessage,
    ListMessages,
    MessagePage,
    MessageStatus,
    MessageSummary,
    RecipientStatus,
    Skipped,
)
from shared.errors import ErrorCode, ServiceError

STATES = ("queued", "sending", "retrying", "sent", "failed")
_STATE = "CASE WHEN state = 'queued' AND attempts > 0 THEN 'retrying' ELSE state END"
_LIST_WHERE = (
    "($1::text IS NULL OR m.channel = $1)"
    " AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.message_id"
    " AND d.customer_id = $2))"
    f" AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.message_id"
    f" AND {_STATE.replace('state', 'd.state').replace('attempts', 'd.attempts')} = $3))"
)


class MessageQueries:
    """Reads `messages` and `deliveries`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def status(self, q: GetMessage) -> MessageStatus:
        """The message, its counts by state, and one page of recipients."""
        msg = await self.pool.fetchrow("SELECT * FROM messages WHERE message_id = $1", q.message_id)
        if msg is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no message {q.message_id}")
        counts = {s: 0 for s in STATES}
        for row in await self.pool.fetch(
            f"SELECT {_STATE} AS s, count(*) AS n FROM deliveries WHERE message_id = $1 GROUP BY 1",
            q.message_id,
        ):
            counts[row["s"]] = row["n"]
        after = self._cursor(q.cursor)
        rows = await self.pool.fetch(
            f"SELECT delivery_id, customer_id, contact_id, recipient, {_STATE} AS s, attempts, last_error,"
            " dead_letter, unconfirmed, sent_at, updated_at FROM deliveries"
            " WHERE message_id = $1 AND ($2::uuid IS NULL OR delivery_id > $2)"
            " ORDER BY delivery_id LIMIT $3",
            q.message_id,
            after,
            q.limit + 1,
        )
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        items = [
            RecipientStatus(
                delivery_id=r["delivery_id"],
                customer_id=r["customer_id"],
                contact_id=r["contact_id"],
                to=r["recipient"],
                state=r["s"],
                attempts=r["attempts"],
                last_error=r["last_error"],
                dead_lettered=r["dead_letter"] is not None,
                unconfirmed=r["unconfirmed"],
                sent_at=r["sent_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]
        return MessageStatus(
            message_id=msg["message_id"],
            kind=msg["kind"],
            channel=msg["channel"],
            subject=msg["subject"],
            template=msg["template"],
            created_at=msg["created_at"],
            recipients=msg["recipients"],
            skipped=[Skipped.model_validate(s) for s in json.loads(msg["skipped"])],
            counts=counts,
            items=items,
            next_cursor=str(rows[-1]["delivery_id"]) if more else None,
            total=sum(counts.values()),
        )

    async def list(self, q: ListMessages) -> MessagePage:
        """Messages newest first, filtered, with their counts by state (offset cursor)."""
        offset = _offset(q.cursor)
        args = (q.channel, q.customer_id, q.state)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval(f"SELECT count(*) FROM messages m WHERE {_LIST_WHERE}", *args)
            rows = await conn.fetch(
                f"SELECT m.message_id, m.kind, m.channel, m.subject, m.template, m.created_at, m.recipients,"
                f" jsonb_array_length(m.skipped) AS skipped FROM messages m WHERE {_LIST_WHERE}"
                " ORDER BY m.created_at DESC, m.message_id DESC LIMIT $4 OFFSET $5",
                *args, q.limit, offset,
            )
            ids = [r["message_id"] for r in rows]
            counted = await conn.fetch(
                f"SELECT message_id, {_STATE} AS s, count(*) AS n FROM deliveries"
                " WHERE message_id = ANY($1::uuid[]) GROUP BY 1, 2", ids,
            )
        counts: dict[UUID, dict[str, int]] = {i: {s: 0 for s in STATES} for i in ids}
        for row in counted:
            counts[row["message_id"]][row["s"]] = row["n"]
        items = [MessageSummary(**{**dict(r), "counts": counts[r["message_id"]]}) for r in rows]
        more = offset + len(items) < total
        return MessagePage(items=items, next_cursor=str(offset + len(items)) if more else None, total=total)

    @staticmethod
    def _cursor(cursor: str | None) -> UUID | None:
        if not cursor:
            return None
        try:
            return UUID(cursor)
        except ValueError:
            raise ServiceError(ErrorCode.VALIDATION, "the cursor is not one this API gave") from None


def _offset(cursor: str | None) -> int:
    """The list's cursor (an offset this API gave)."""
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise ServiceError(ErrorCode.VALIDATION, "the cursor is not one this API gave")
    return int(cursor)
