"""The codes table: every change together with the messages it publishes, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from shared.erasure_feed import Erasure
from shared.message_outbox import OutboxMessage, insert_messages
from shared.personal_data import ERASED

from verification.domain.codes import CodeRecord

_COLUMNS = (
    "id::text AS id, customer_id::text AS customer_id, contact_id::text AS contact_id, channel,"
    " target, code_hash, expires_at, attempts, events, status, request_id, confirm_id"
)


def _record(row: asyncpg.Record | None) -> CodeRecord | None:
    return CodeRecord(**dict(row)) if row is not None else None


async def lock_contact(conn: asyncpg.Connection, contact_id: str) -> None:
    """Serialize code requests of one contact (so the rate limit holds under concurrency)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"verification:{contact_id}")


async def test_calls_since(conn: asyncpg.Connection, customer_id: str, since: datetime) -> int:
    """How many test calls this customer's contacts started since a time (serialized per customer)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"verification:test-calls:{customer_id}")
    return int(await conn.fetchval(
        "SELECT count(*) FROM codes WHERE customer_id = $1::uuid AND channel = 'cli' AND created_at > $2",
        customer_id, since,
    ))


async def recent_requests(conn: asyncpg.Connection, contact_id: str, since: datetime) -> int:
    """How many codes (of any channel) this contact asked for since a time."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM codes WHERE contact_id = $1::uuid AND created_at > $2", contact_id, since
        )
    )


async def insert_code(
    conn: asyncpg.Connection, record: CodeRecord, created_at: datetime, messages: Sequence[OutboxMessage]
) -> None:
    """A new open code; earlier open codes of the same contact and channel are superseded."""
    await conn.execute(
        "UPDATE codes SET status = 'superseded' WHERE contact_id = $1::uuid AND channel = $2"
        " AND status = 'open'",
        record.contact_id,
        record.channel,
    )
    await conn.execute(
        "INSERT INTO codes (id, customer_id, contact_id, channel, target, code_hash, created_at,"
        " expires_at, request_id) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, $9)",
        record.id,
        record.customer_id,
        record.contact_id,
        record.channel,
        record.target,
        record.code_hash,
        created_at,
        record.expires_at,
        record.request_id,
    )
    await insert_messages(conn, messages)


async def by_command_id(conn: asyncpg.Connection, contact_id: str, command_id: str) -> list[CodeRecord]:
    """The codes of this contact that a request or a confirmation with this idempotency key touched."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM codes WHERE contact_id = $1::uuid AND (request_id = $2 OR confirm_id = $2)",
        contact_id,
        command_id,
    )
    return [CodeRecord(**dict(row)) for row in rows]


async def latest_for_update(
    conn: asyncpg.Connection, contact_id: str, channel: str, target: str | None = None
) -> CodeRecord | None:
    """The contact's latest code of a channel (and target), locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM codes WHERE contact_id = $1::uuid AND channel = $2"
        " AND ($3::text IS NULL OR target = $3) ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
        contact_id,
        channel,
        target,
    )
    return _record(row)


async def by_id_for_update(conn: asyncpg.Connection, verification_id: str) -> CodeRecord | None:
    """One code by id, locked until the transaction ends."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM codes WHERE id = $1::uuid FOR UPDATE", verification_id)
    return _record(row)


async def record_wrong(
    conn: asyncpg.Connection, verification_id: str, messages: Sequence[OutboxMessage]
) -> int:
    """Count a wrong try; return the tries so far."""
    attempts = await conn.fetchval(
        "UPDATE codes SET attempts = attempts + 1, events = events + 1 WHERE id = $1::uuid"
        " RETURNING attempts",
        verification_id,
    )
    await insert_messages(conn, messages)
    return int(attempts)


async def mark_verified(
    conn: asyncpg.Connection, verification_id: str, messages: Sequence[OutboxMessage],
    confirm_id: str | None = None,
) -> None:
    """The code was right: it is used up (by this confirmation), and the outcome goes out."""
    await conn.execute(
        "UPDATE codes SET status = 'verified', events = events + 1, confirm_id = $2 WHERE id = $1::uuid",
        verification_id,
        confirm_id,
    )
    await insert_messages(conn, messages)


async def erase_targets(pool: asyncpg.Pool, erasure: Erasure) -> None:
    """An erasure: the codes' targets (e-mail, mobile, CLI) of those contacts read "[erased]"."""
    await pool.execute(
        "UPDATE codes SET target = $3 WHERE contact_id = ANY($1::uuid[])"
        " OR ($2::uuid IS NOT NULL AND customer_id = $2::uuid)",
        erasure.contact_ids, erasure.customer_id if erasure.whole_customer else None, ERASED,
    )
