"""The card summary's charts: attempts, ASR, ACD and charge per bucket of the chosen period.

Buckets follow the summary's period: Live is per hour over the last 24 hours, Daily per day,
Weekly per ISO week, Monthly per month, across the summary's whole range (so quiet buckets
show as gaps on a true time axis). Each summary row is one point; values are the API's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup

from gateway.web.charts import LineChart, Point, render
from gateway.web.formatting import money, percent

UNIT = {"live": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
Bucket = date | datetime


@dataclass(frozen=True)
class Chart:
    """A drawn chart and what the template says about it."""

    key: str
    title: str
    svg: Markup
    points: int


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def bucket_of(period: str, start: str) -> Bucket:
    """The bucket a row's `period_start` falls in (an hour for live, else a day, Monday or 1st)."""
    if period == "live":
        moment = datetime.fromisoformat(start)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment.replace(minute=0, second=0, microsecond=0)
    day = date.fromisoformat(start[:10])
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return day


def buckets_of(summary: Mapping[str, Any], period: str) -> list[Bucket]:
    """Every bucket of the summary's range, oldest first (live: the 24 hours up to `as_of`)."""
    buckets: list[Bucket] = []
    if period == "live":
        last = bucket_of("live", str(summary["as_of"]))
        buckets = [last - timedelta(hours=23 - i) for i in range(24)]
    else:
        first, final = (bucket_of(period, str(summary[k])) for k in ("from", "to"))
        day = first
        while isinstance(day, date) and day <= final and len(buckets) < 4000:
            buckets.append(day)
            day = (_month_after(day) if period == "monthly"
                   else day + timedelta(days=7 if period == "weekly" else 1))
    keys = {bucket_of(period, str(row["period_start"])) for row in summary.get("rows") or []}
    return sorted(set(buckets) | keys)  # a row outside the range still gets its bucket


def bucket_label(period: str, bucket: Bucket, *, short: bool = False) -> str:
    """`12-05` on the axis, `2026-12-05 UTC` in a point's title (hours: `03:00`, `... 03:00 UTC`)."""
    if isinstance(bucket, datetime):
        return bucket.strftime("%H:%M") if short else bucket.strftime("%Y-%m-%d %H:%M UTC")
    if period == "monthly":
        return bucket.strftime("%Y-%m") + ("" if short else " UTC")
    if period == "weekly":
        return bucket.strftime("%m-%d") if short else f"week of {bucket.isoformat()} UTC"
    return bucket.strftime("%m-%d") if short else f"{bucket.isoformat()} UTC"


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def series_specs(currency: str) -> list[tuple[str, str, Callable[[Decimal], str], Callable[[Decimal], str]]]:
    """(figure, name, value format, tick format) of the four charts."""
    def seconds(value: Decimal) -> str:
        return f"{value.quantize(Decimal('0.1')):f} s"

    return [
        ("attempts", "Attempts", lambda v: f"{int(v):,}", lambda v: f"{int(v):,}"),
        ("asr", "ASR", percent, lambda v: f"{v:f} %"),
        ("acd_s", "ACD", seconds, lambda v: f"{v:f} s"),
        ("charge", f"Charge ({currency})" if currency else "Charge",
         lambda v: money(v, currency), lambda v: money(v, currency)),
    ]


def _describe(name: str, unit: str, buckets: Sequence[Bucket], points: Sequence[Point], total: str,
              fmt: Callable[[Decimal], str], period: str) -> str:
    if not buckets:
        return f"{name} per {unit}: no range."
    span = f"{bucket_label(period, buckets[0])} to {bucket_label(period, buckets[-1])}"
    if not points:
        return f"{name} per {unit}, {span}: no calls."
    low = min(points, key=lambda p: p.value)
    high = max(points, key=lambda p: p.value)
    return (f"{name} per {unit}, {span}: {len(points)} of {len(buckets)} {unit}s with calls; "
            f"lowest {fmt(low.value)} ({bucket_label(period, buckets[low.bucket])}), "
            f"highest {fmt(high.value)} ({bucket_label(period, buckets[high.bucket])}); "
            f"whole range {total}.")


def summary_charts(summary: Mapping[str, Any], period: str, currency: str = "") -> list[Chart]:
    """The four charts of a summary (rows and totals as the API answers them)."""
    unit = UNIT.get(period, "day")
    buckets = buckets_of(summary, period)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    axis = [bucket_label(period, b, short=True) for b in buckets]
    totals = summary.get("totals") or {}
    charts: list[Chart] = []
    for key, name, fmt, tick in series_specs(currency):
        points: list[Point] = []
        for row in summary.get("rows") or []:
            value = _decimal(row.get(key))
            if value is None:
                continue
            bucket = bucket_of(period, str(row["period_start"]))
            label = f"{bucket_label(period, bucket)}: {name} {fmt(value)}"
            points.append(Point(index[bucket], value, str(row["period_start"]), label))
        points.sort(key=lambda p: p.bucket)
        total_value = _decimal(totals.get(key))
        total = fmt(total_value) if total_value is not None else "unknown"
        title = f"{name} per {unit}"
        chart = LineChart(
            key=key.replace("_", "-"), title=title,
            description=_describe(name, unit, buckets, points, total, fmt, period),
            buckets=axis, points=points, tick_label=tick, integer=key == "attempts",
        )
        charts.append(Chart(chart.key, title, render(chart), len(points)))
    return charts
