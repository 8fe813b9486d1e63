"""Rate limits that hold across gateway replicas: fixed-window counters in PostgreSQL."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

import asyncpg
from shared.errors import ErrorCode

from gateway.errors import ApiError

_HIT = """
INSERT INTO gateway.rate_limits AS r (key, window_start, hits) VALUES ($1, now(), 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN r.window_start <= now() - make_interval(secs => $2) THEN 1 ELSE r.hits + 1 END,
    window_start = CASE WHEN r.window_start <= now() - make_interval(secs => $2)
                        THEN now() ELSE r.window_start END
RETURNING hits, window_start, now() AS now
"""
_PEEK = """
SELECT hits, window_start, now() AS now FROM gateway.rate_limits
WHERE key = $1 AND window_start > now() - make_interval(secs => $2)
"""
SWEEP_EVERY = 1000


def limit_key(kind: str, value: str) -> str:
    """A counter's key: the kind and a hash of the value (no e-mail or address stored as such)."""
    return f"{kind}:{hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]}"


class RateLimiter:
    """Counts hits per key in windows; the hit past the limit is refused with 429 and Retry-After."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._hits = 0

    async def hit(self, key: str, *, limit: int, window_s: float, what: str) -> None:
        """Count one hit; raise 429 when the key is over its limit in the current window."""
        row = await self.pool.fetchrow(_HIT, key, window_s)
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            await self.pool.execute(
                "DELETE FROM gateway.rate_limits WHERE window_start < now() - interval '1 day'"
            )
        if row["hits"] <= limit:
            return
        raise _refusal(row, window_s, what)

    async def peek(self, key: str, *, limit: int, window_s: float, what: str) -> None:
        """Raise 429 when the key is already at its limit in the current window (counts nothing)."""
        row = await self.pool.fetchrow(_PEEK, key, window_s)
        if row is not None and row["hits"] >= limit:
            raise _refusal(row, window_s, what)

    async def forget(self, key: str) -> None:
        """Drop a key's counter (a successful login clears its failures)."""
        await self.pool.execute("DELETE FROM gateway.rate_limits WHERE key = $1", key)


def _refusal(row: asyncpg.Record, window_s: float, what: str) -> ApiError:
    ends: datetime = row["window_start"] + timedelta(seconds=window_s)
    retry = max(1, math.ceil((ends - row["now"]).total_seconds()))
    return ApiError(
        ErrorCode.RATE_LIMITED, f"too many {what}; try again in {retry} s",
        headers={"Retry-After": str(retry)},
    )

