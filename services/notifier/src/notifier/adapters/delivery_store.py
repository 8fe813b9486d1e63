"""The delivery ledger in PostgreSQL: queue, claim (committed before sending), record, recover."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from shared.envelope import EventEnvelope, Metadata
from shared.erasure_feed import Erasure
from shared.eventstore import EventStore, Fragment
from shared.personal_data import ERASED

from notifier.domain.delivery import Delivery, Recorded, outcome_event


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to queue."""

    delivery_id: UUID
    idempotency_key: str
    recipient: str
    customer_id: UUID | None = None
    contact_id: UUID | None = None
    subject: str | None = None
    body: str | None = None
    template: str | None = None
    variables: dict[str, str] | None = None
    sealed_secret: str | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class NewMessage:
    """A message and its deliveries."""

    message_id: UUID
    kind: str
    channel: str
    metadata: Metadata
    deliveries: Sequence[NewDelivery]
    subject: str | None = None
    body: str | None = None
    template: str | None = None
    skipped: Sequence[dict[str, str]] = ()


_MESSAGE = (
    "INSERT INTO messages (message_id, kind, channel, subject, body, template, metadata, recipients, skipped)"
    " VALUES ({}, {}, {}, {}, {}, {}, {}::jsonb, {}, {}::jsonb) ON CONFLICT (message_id) DO NOTHING"
)
_DELIVERIES = (
    "INSERT INTO deliveries (delivery_id, message_id, idempotency_key, channel, recipient, customer_id,"
    " contact_id, subject, body, template, variables, sealed_secret, sensitive)"
    " SELECT * FROM unnest({}::uuid[], {}::uuid[], {}::text[], {}::text[], {}::text[], {}::uuid[],"
    " {}::uuid[], {}::text[], {}::text[], {}::text[], {}::jsonb[], {}::text[], {}::bool[])"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)
_RECORD_SQL = (
    "UPDATE deliveries d SET state = u.state, last_error = u.error,"
    " provider_id = COALESCE(u.provider_id, d.provider_id),"
    " next_attempt_at = now() + make_interval(secs => {retry_in}),"
    " sent_at = CASE WHEN u.state = 'sent' THEN now() ELSE d.sent_at END,"
    " dead_letter = CASE WHEN u.dead THEN 'pending' ELSE d.dead_letter END,"
    " unconfirmed = u.unconfirmed, attempts = COALESCE(u.attempts, d.attempts),"
    " event_version = d.event_version + 1, claimed_by = NULL, updated_at = now()"
    " FROM unnest({}::uuid[], {}::text[], {}::text[], {}::text[], {}::float8[], {}::bool[], {}::bool[],"
    " {}::int[]) AS u(id, state, error, provider_id, retry_in, dead, unconfirmed, attempts)"
    " WHERE d.delivery_id = u.id AND d.state = 'sending'"
)
# A retry after an attempt with settings older than the channel's current ones is due at once
# (docs/notifier.md, "Retries"). The settings row is read FOR SHARE: a settings write locks it
# FOR UPDATE before its statement, so either it waits for this record and then finds the rows
# queued (and makes them due), or this record waits for it and reads the new version.
_STALE = "(SELECT version FROM channel_settings WHERE channel = {} FOR SHARE)"
_RECORD = _RECORD_SQL.replace("{retry_in}", "u.retry_in")
_RECORD_TRIED_WITH = _RECORD_SQL.replace(
    "{retry_in}", f"CASE WHEN u.state = 'queued' AND {{}}::int < {_STALE} THEN 0 ELSE u.retry_in END")
_RELEASE = (
    "UPDATE deliveries SET state = 'queued', attempts = attempts - 1, claimed_by = NULL,"
    " next_attempt_at = now() + make_interval(secs => CASE WHEN $3::int < (SELECT version"
    " FROM channel_settings WHERE channel = $4 FOR SHARE) THEN 0 ELSE $2 END), updated_at = now()"
    " WHERE delivery_id = ANY($1::uuid[]) AND state = 'sending'"
)
_CLAIM = (
    "UPDATE deliveries d SET state = 'sending', claimed_by = $1, claimed_at = now(),"
    " attempts = d.attempts + 1, updated_at = now()"
    " FROM (SELECT delivery_id FROM deliveries WHERE state = 'queued' AND channel = $2"
    "       AND next_attempt_at <= now() ORDER BY next_attempt_at, delivery_id LIMIT $3"
    "       FOR UPDATE SKIP LOCKED) c"
    " WHERE d.delivery_id = c.delivery_id"
    " RETURNING d.*, (SELECT m.metadata FROM messages m WHERE m.message_id = d.message_id) AS metadata"
)


def message_fragments(msg: NewMessage) -> list[Fragment]:
    """The statements that queue a message and its deliveries (joined to an append)."""
    ds = msg.deliveries
    return [
        Fragment(
            _MESSAGE,
            [
                msg.message_id,
                msg.kind,
                msg.channel,
                msg.subject,
                msg.body,
                msg.template,
                msg.metadata.model_dump_json(),
                len(ds),
                json.dumps(list(msg.skipped)),
            ],
        ),
        Fragment(
            _DELIVERIES,
            [
                [d.delivery_id for d in ds],
                [msg.message_id] * len(ds),
                [d.idempotency_key for d in ds],
                [msg.channel] * len(ds),
                [d.recipient for d in ds],
                [d.customer_id for d in ds],
                [d.contact_id for d in ds],
                [d.subject for d in ds],
                [d.body for d in ds],
                [d.template for d in ds],
                [json.dumps(d.variables or {}) for d in ds],
                [d.sealed_secret for d in ds],
                [d.sensitive for d in ds],
            ],
        ),
    ]


def _delivery(row: asyncpg.Record) -> Delivery:
    meta = row["metadata"]
    return Delivery(
        delivery_id=row["delivery_id"],
        message_id=row["message_id"],
        channel=row["channel"],
        recipient=row["recipient"],
        attempts=row["attempts"],
        event_version=row["event_version"],
        customer_id=row["customer_id"],
        contact_id=row["contact_id"],
        subject=row["subject"],
        body=row["body"],
        template=row["template"],
        variables=json.loads(row["variables"]),
        sealed_secret=row["sealed_secret"],
        sensitive=row["sensitive"],
        metadata=Metadata.model_validate_json(meta) if meta else Metadata(),
        created_at=row["created_at"],
    )


class DeliveryStore:
    """Every read and write of the `messages` and `deliveries` tables."""

    def __init__(self, pool: asyncpg.Pool, events: EventStore) -> None:
        self.pool = pool
        self.events = events

    async def queue(
        self, msg: NewMessage, *, events: Sequence[EventEnvelope] = (),
        reply: tuple[str, str, str | None] | None = None,
    ) -> None:
        """Queue a message with its deliveries, events and command reply (id, reply, request
        fingerprint), in one statement."""
        await self.events.append(events, replies=[reply] if reply else (), fragments=message_fragments(msg))

    async def queue_many(self, msgs: Sequence[NewMessage]) -> None:
        """Queue several messages in one transaction; those already queued are left alone."""
        async with self.pool.acquire() as conn, conn.transaction():
            for msg in msgs:
                for frag in message_fragments(msg):
                    sql = frag.sql.format(*[f"${i + 1}" for i in range(len(frag.args))])
                    await conn.execute(sql, *frag.args)

    async def claim(self, channel: str, instance: UUID, limit: int) -> list[Delivery]:
        """Claim due deliveries for this instance; committed before any byte is sent."""
        rows = await self.pool.fetch(_CLAIM, instance, channel, limit)
        return sorted((_delivery(r) for r in rows), key=lambda d: (d.created_at, d.delivery_id))

    async def erase(self, erasure: Erasure) -> None:
        """An erasure: the delivery history of those contacts (or the whole customer) forgets the
        address, the variables and the body; a delivery still queued fails instead of sending."""
        await self.pool.execute(
            _ERASE, erasure.contact_ids, erasure.customer_id if erasure.whole_customer else None, ERASED
        )

    async def record(self, outcomes: Sequence[Recorded], tried_with: int | None = None) -> None:
        """Write outcomes and their events atomically (a stale claim fails on the event version).

        `tried_with`: the settings version the attempts used; a retry is then due at once if the
        channel's settings are newer (tried with settings no longer in force).
        """
        if not outcomes:
            return
        args: list[Any] = [
            [o.delivery.delivery_id for o in outcomes],
            [o.state for o in outcomes],
            [o.error for o in outcomes],
            [o.provider_id for o in outcomes],
            [o.retry_in_s for o in outcomes],
            [o.dead_letter for o in outcomes],
            [o.unconfirmed for o in outcomes],
            [o.attempts for o in outcomes],
        ]
        sql = _RECORD
        if tried_with is not None and any(o.state == "queued" for o in outcomes):
            sql = _RECORD_TRIED_WITH
            args = [tried_with, outcomes[0].delivery.channel, *args]  # their {} come first, in SET
        await self.events.append([outcome_event(o) for o in outcomes], fragments=[Fragment(sql, args)])

    async def release(self, ids: Sequence[UUID], delay_s: float, tried_with: int | None = None,
                      channel: str | None = None) -> None:
        """Give claimed, unattempted deliveries back to the queue with their attempt (no event);
        due at once if the channel's settings are newer than `tried_with`."""
        await self.pool.execute(_RELEASE, list(ids), delay_s, tried_with, channel)

    async def orphans(self, instance: UUID, known: set[UUID], older_than_s: float) -> list[UUID]:
        """Claims of this instance that it does not know of (a claim whose answer was lost)."""
        rows = await self.pool.fetch(
            "SELECT delivery_id FROM deliveries WHERE state = 'sending' AND claimed_by = $1"
            " AND claimed_at < now() - make_interval(secs => $2)",
            instance,
            older_than_s,
        )
        return [r["delivery_id"] for r in rows if r["delivery_id"] not in known]

    async def claimed_by_others(self, instance: UUID) -> list[UUID]:
        """Instances (other than this one) that hold claims."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'sending' AND claimed_by <> $1",
            instance,
        )
        return [r["claimed_by"] for r in rows]

    async def claims_of(self, instance: UUID) -> list[Delivery]:
        """Deliveries an instance claimed and never recorded."""
        rows = await self.pool.fetch(
            "SELECT d.*, m.metadata FROM deliveries d JOIN messages m USING (message_id)"
            " WHERE d.state = 'sending' AND d.claimed_by = $1",
            instance,
        )
        return [_delivery(r) for r in rows]

    async def pending_dead_letters(self, limit: int = 500) -> list[asyncpg.Record]:
        """Dead-lettered deliveries not yet published to DEAD_LETTERS."""
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT delivery_id, message_id, channel, recipient, customer_id, contact_id, template,"
            " attempts, last_error FROM deliveries WHERE dead_letter = 'pending' LIMIT $1",
            limit,
        )
        return rows

    async def mark_dead_letters_published(self, ids: Sequence[UUID]) -> None:
        """Remember that these dead letters are on DEAD_LETTERS."""
        await self.pool.execute(
            "UPDATE deliveries SET dead_letter = 'published' WHERE delivery_id = ANY($1::uuid[])", list(ids)
        )


_ERASE = (
    "UPDATE deliveries SET recipient = $3, body = NULL, variables = '{}'::jsonb, sealed_secret = NULL,"
    " state = CASE WHEN state = 'queued' THEN 'failed' ELSE state END,"
    " last_error = CASE WHEN state = 'queued' THEN 'personal data erased' ELSE last_error END,"
    " updated_at = now()"
    " WHERE contact_id = ANY($1::uuid[]) OR ($2::uuid IS NOT NULL AND customer_id = $2::uuid)"
)
