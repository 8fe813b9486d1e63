"""Erasures replayed at start: a restored database never brings an erased key back.

Two records of every erasure live outside the customer schema: its erase event on the stream
CUSTOMER_EVENTS, and, when `PATCHBAY_ERASURE_LOG` names a file, a line in that append-only
log (keep it on storage that backups do not roll back: a restore of both the database and the
streams from before an erasure would otherwise bring the key back). At start the service reads
both and makes sure each subject's key row is a tombstone (the erase statement, idempotent),
before it answers anything.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import structlog
from nats.js import JetStreamContext
from shared.erasure_feed import erasures_on_stream

from customer.adapters.data_keys import ERASE_SQL

log = structlog.get_logger(__name__)


class ErasureLog:
    """An append-only file of erased subjects (one JSON line per erasure; no personal data)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, subjects: list[str]) -> None:
        """Record an erasure, durably (fsync) before the caller moves on."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "subjects": subjects}) + "\n"
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def subjects(self) -> list[str]:
        """Every subject the log says was erased (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        found: list[str] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.extend(str(s) for s in json.loads(line)["subjects"])
            except (ValueError, KeyError, TypeError):
                log.warning("erasure_log_line_unreadable", path=str(self.path))
        return found


async def erased_on_stream(js: JetStreamContext) -> list[str]:
    """The subjects of every erase event on the stream."""
    return [s for erasure in await erasures_on_stream(js) for s in erasure.subjects]


async def replay_erasures(
    js: JetStreamContext, pool: asyncpg.Pool, erasure_log: ErasureLog | None = None
) -> int:
    """Tombstone every subject the stream (and the log) say was erased; the keys this destroyed."""
    subjects = sorted({*await erased_on_stream(js), *(erasure_log.subjects() if erasure_log else [])})
    if not subjects:
        return 0
    destroyed = await pool.fetchval(
        "SELECT count(*) FROM data_keys WHERE subject = ANY($1::text[]) AND sealed IS NOT NULL", subjects
    )
    await pool.execute(ERASE_SQL.format("$1"), subjects)
    if destroyed:
        log.warning("erased_keys_destroyed_again", keys=destroyed,
                    why="the database held keys that erasures had destroyed (restored from a backup?)")
    log.info("erasures_replayed", subjects=len(subjects))
    return int(destroyed)
