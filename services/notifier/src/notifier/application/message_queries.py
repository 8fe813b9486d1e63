"""A message's delivery status: counts by state and recipients by cursor."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg
from shared.contracts.notifier import GetMessage, MessageStatus, RecipientStatus, Skipped
from shared.errors import ErrorCode, ServiceError

STATES = ("queued", "sending", "retrying", "sent", "failed")
_STATE = "CASE WHEN state = 'queued' AND attempts > 0 THEN 'retrying' ELSE state END"


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

    @staticmethod
    def _cursor(cursor: str | None) -> UUID | None:
        if not cursor:
            return None
        try:
            return UUID(cursor)
        except ValueError:
            raise ServiceError(ErrorCode.VALIDATION, "the cursor is not one this API gave") from None
