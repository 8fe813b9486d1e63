"""Erasures replayed from JetStream at start: a restored database never brings an erased key back.

The erase events are on CUSTOMER_EVENTS, which is kept (and backed up) apart from PostgreSQL. At
start the service reads every CustomerErased / ContactErased there and makes sure each subject's
key row is a tombstone (the erase statement, idempotent). A database restored from a backup taken
before an erasure thus loses the key again before the service answers anything.
"""

from __future__ import annotations

import asyncpg
import structlog
from nats.js import JetStreamContext
from shared.erasure_feed import erasures_on_stream

from customer.adapters.data_keys import ERASE_SQL

log = structlog.get_logger(__name__)


async def erased_on_stream(js: JetStreamContext) -> list[str]:
    """The subjects of every erase event on the stream."""
    return [s for erasure in await erasures_on_stream(js) for s in erasure.subjects]


async def replay_erasures(js: JetStreamContext, pool: asyncpg.Pool) -> int:
    """Tombstone every subject the stream says was erased; the number of keys this destroyed."""
    subjects = await erased_on_stream(js)
    if not subjects:
        return 0
    destroyed = await pool.fetchval(
        "SELECT count(*) FROM data_keys WHERE subject = ANY($1::text[]) AND sealed IS NOT NULL", subjects
    )
    await pool.execute(ERASE_SQL.format("$1"), subjects)
    if destroyed:
        log.warning("erased_keys_destroyed_again", keys=destroyed,
                    why="the database held keys its erase events on the stream had destroyed (restored?)")
    log.info("erasures_replayed", subjects=len(subjects))
    return int(destroyed)
