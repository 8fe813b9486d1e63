"""The audit log: every event of every event stream, one row each, by event id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from shared.envelope import EventEnvelope

from reporting.domain.audit import AuditEntry, entry_of
from reporting.projections.base import Projection, Source, Tables

COLUMNS = (
    "event_id", "stream", "seq", "customer_id", "category", "stream_id", "version", "type",
    "action", "occurred_at", "actor_kind", "actor_id", "actor_name", "ip", "reason",
    "correlation_id", "causation_id", "changes", "data", "event",
)
TYPES = (
    "uuid", "text", "bigint", "text", "text", "text", "int", "text", "text", "timestamptz",
    "text", "text", "text", "text", "text", "text", "text", "json", "json", "text",
)
SOURCES = (
    Source("CUSTOMER_EVENTS", ("events.>",)),
    Source("VERIFICATION_EVENTS", ("events.>",)),
    Source("NOTIFICATION_EVENTS", ("events.>",)),
    Source("BILLING_EVENTS", ("events.>",)),
)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


class AuditProjection(Projection[AuditEntry]):
    """Audit entries from CUSTOMER_, VERIFICATION_, NOTIFICATION_ and BILLING_EVENTS."""

    name = "audit"
    tables = ("audit_log", "audit_checkpoints")
    checkpoint_table = "audit_checkpoints"
    sources = SOURCES

    def decode(self, stream: str, seq: int, subject: str, data: bytes) -> AuditEntry:
        """The envelope as an audit entry (the raw JSON is kept for customer events)."""
        event = EventEnvelope.model_validate_json(data)
        return entry_of(event, stream=stream, seq=seq, raw=data.decode())

    async def write(
        self, conn: asyncpg.Connection | asyncpg.Pool, tables: Tables, stream: str,
        items: Sequence[AuditEntry], last_seq: int,
    ) -> None:
        """Insert the entries not yet present and move the checkpoint, in one statement."""
        columns: list[list[Any]] = [[] for _ in COLUMNS]
        for e in items:
            row = (
                e.event_id, e.stream, e.seq, e.customer_id, e.category, e.stream_id, e.version,
                e.type, e.action, e.occurred_at, e.actor_kind, e.actor_id, e.actor_name, e.ip,
                e.reason, e.correlation_id, e.causation_id, _dumps(e.changes), _dumps(e.data),
                e.event,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        n = len(COLUMNS)
        unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(TYPES))
        sql = (
            f"WITH i AS (INSERT INTO {tables['audit_log']} ({', '.join(COLUMNS)})"
            f" SELECT * FROM unnest({unnest}) ON CONFLICT (event_id) DO NOTHING),"
            f" c AS ({self.checkpoint_sql(tables, n + 1, n + 2)}) SELECT 1"
        )
        await conn.execute(sql, *columns, stream, last_seq)
