"""An outbox for messages that are not events (NOTIFY work items, verification outcomes).

A service writes its messages as rows of `message_outbox` in the same transaction (or the
same statement, as a `Fragment` of `EventStore.append`) as the change they belong to; the
relay publishes them to JetStream with `Nats-Msg-Id` = the row's `msg_id`, waits for the
acks, then deletes the rows. A crash between publish and delete republishes: JetStream's
dedup and the consumers' idempotency absorb it. One relay publishes at a time per schema
(`shared.leader.LeaderLoop`: an advisory lock); LISTEN/NOTIFY wakes it, a short poll is the fallback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog
from nats.js import JetStreamContext

from shared.eventstore import Fragment
from shared.leader import LeaderLoop
from shared.publish_acks import BatchPublisher, header_block

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "message_outbox"

# the table (`message_outbox`: id identity, subject, msg_id, headers jsonb, payload bytea) and
# its NOTIFY trigger are created by each service's own migration (customer: 0003_contacts.sql)
_INSERT = (
    "INSERT INTO message_outbox (subject, msg_id, headers, payload)"
    " SELECT * FROM unnest({}::text[], {}::text[], {}::jsonb[], {}::bytea[])"
)


@dataclass(frozen=True)
class OutboxMessage:
    """One message to publish once: subject, dedup id, payload, extra headers."""

    subject: str
    msg_id: str
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _columns(messages: Sequence[OutboxMessage]) -> list[list[object]]:
    return [
        [m.subject for m in messages], [m.msg_id for m in messages],
        [json.dumps(m.headers) for m in messages], [m.payload for m in messages],
    ]


def outbox_fragment(messages: Sequence[OutboxMessage]) -> Fragment:
    """The messages as a fragment of an event-store append (same statement, same commit)."""
    return Fragment(_INSERT, list(_columns(messages)))


async def insert_messages(conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
    """Write the messages inside the caller's transaction."""
    if messages:
        await conn.execute(_INSERT.format("$1", "$2", "$3", "$4"), *_columns(messages))


class MessageRelay:
    """Publishes one schema's `message_outbox` rows to JetStream, in order, acked, then deletes them."""

    def __init__(
        self, *, dsn: str, schema: str, js: JetStreamContext, batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.js = js
        self.publisher = BatchPublisher(js)
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.published_total = 0
        self._leader = LeaderLoop(
            name="message_relay", dsn=dsn, schema=schema, lock_key=f"message-relay:{schema}",
            channel=NOTIFY_CHANNEL, work=self.publish_pending, batch_size=batch_size,
            poll_interval_s=poll_interval_s,
        )

    async def run(self) -> None:
        """Run until cancelled: take the lead when free, publish whenever woken."""
        await self._leader.run()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish one batch in id order and wait for every ack; return how many."""
        rows = await conn.fetch(
            "SELECT id, subject, msg_id, headers::text AS headers, payload FROM message_outbox"
            " ORDER BY id LIMIT $1", self.batch_size,
        )
        if not rows:
            return 0
        await self.publisher.publish([
            (r["subject"], header_block({**json.loads(r["headers"]), "Nats-Msg-Id": r["msg_id"]}),
             bytes(r["payload"]))
            for r in rows
        ])
        await conn.execute("DELETE FROM message_outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published_total += len(rows)
        return len(rows)
