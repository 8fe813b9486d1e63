"""Summary rows from the hourly sums: live, per UTC day, ISO week or month, with true totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from shared.contracts.reporting import Figures, Summary, SummaryQuery, SummaryRow

from reporting.domain.calls import PeriodRow, Totals, total_of

TRUNC = {"daily": "day", "weekly": "week", "monthly": "month"}
DEFAULT_SPAN = {"daily": 30, "weekly": 7 * 12 - 1, "monthly": 365}
_SUMS = (
    "sum(attempts)::bigint AS attempts, sum(connected)::bigint AS connected,"
    " sum(duration_s)::bigint AS duration_s, sum(billed_duration_s)::bigint AS billed_duration_s,"
    " sum(charge) AS charge, sum(cost) AS cost, sum(pdd_ms_sum)::bigint AS pdd_ms_sum,"
    " sum(pdd_samples)::bigint AS pdd_samples"
)


def _totals(row: asyncpg.Record) -> Totals:
    return Totals(
        attempts=row["attempts"], connected=row["connected"], duration_s=row["duration_s"],
        billed_duration_s=row["billed_duration_s"], charge=row["charge"] or Decimal(0),
        cost=row["cost"] or Decimal(0), pdd_ms_sum=row["pdd_ms_sum"], pdd_samples=row["pdd_samples"],
    )


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def period_rows(
    conn: Any, customer_id: str, trunc: str, since: datetime, until: datetime
) -> list[tuple[Any, Totals]]:
    """Rows grouped by a UTC `date_trunc` unit (`hour`, `day`, `week`, `month`) in [since, until)."""
    rows = await conn.fetch(
        f"SELECT date_trunc('{trunc}', hour, 'UTC') AS start, {_SUMS} FROM call_hours"
        " WHERE customer_id = $1 AND hour >= $2 AND hour < $3 GROUP BY 1 ORDER BY 1",
        customer_id, since, until,
    )
    return [(r["start"], _totals(r)) for r in rows]


async def daily_rows(conn: Any, customer_id: str, days: list[date]) -> list[PeriodRow]:
    """The daily rows of chosen days (days without calls are absent)."""
    wanted = set(days)
    rows = await period_rows(
        conn, customer_id, "day", _start_of(min(days)), _start_of(max(days) + timedelta(days=1))
    )
    return [PeriodRow(start.date(), totals) for start, totals in rows if start.date() in wanted]


class SummaryQueries:
    """Summaries over the live call tables."""

    def __init__(self, pool: asyncpg.Pool, *, live_call_max_age_s: float) -> None:
        self.pool = pool
        self.live_call_max_age = timedelta(seconds=live_call_max_age_s)

    async def summary(self, query: SummaryQuery, now: datetime | None = None) -> Summary:
        """Rows and totals of the query's period and range."""
        now = now or datetime.now(UTC)
        cid = str(query.customer_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            if query.period == "live":
                return await self._live(conn, query, cid, now)
            until_day = query.to_day or now.date()
            from_day = query.from_day or until_day - timedelta(days=DEFAULT_SPAN[query.period])
            if query.period == "monthly" and query.from_day is None:
                from_day = from_day.replace(day=1)
            rows = await period_rows(
                conn, cid, TRUNC[query.period], _start_of(from_day),
                _start_of(until_day + timedelta(days=1)),
            )
        return self._summary(query, from_day, until_day, rows, now)

    async def _live(self, conn: Any, query: SummaryQuery, cid: str, now: datetime) -> Summary:
        in_use = await conn.fetchval(
            "SELECT count(*) FROM live_calls WHERE customer_id = $1 AND started_at > $2",
            cid, now - self.live_call_max_age,
        )
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        rows = await period_rows(conn, cid, "hour", since, now + timedelta(hours=1))
        summary = self._summary(query, since.date(), now.date(), rows, now)
        summary.channels_in_use = in_use
        return summary

    @staticmethod
    def _summary(
        query: SummaryQuery, from_day: date, to_day: date, rows: list[tuple[Any, Totals]],
        now: datetime,
    ) -> Summary:
        out = [
            SummaryRow(period_start=start.date() if query.period != "live" else start,
                       **totals.figures())
            for start, totals in rows
        ]
        total = total_of([PeriodRow(from_day, totals) for _, totals in rows])
        return Summary(
            customer_id=query.customer_id, period=query.period, from_day=from_day, to_day=to_day,
            rows=out, totals=Figures(**total.figures()), as_of=now,
        )
