"""Small line charts drawn on the server as inline SVG (no script): scales, axes, points.

A chart is a row of time buckets (days, hours, ...) and, for some of them, a value. Each value is
a `<circle class="point">` with `data-at` / `data-value`, a `<title>` for the pointer, and the
line joins points of neighbouring buckets only (a bucket without data leaves a gap).
Presentation lives in `static/charts.css` (the console's CSP allows no inline styles).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 320, 168
LEFT, RIGHT, TOP, BOTTOM = 66, 10, 10, 26  # margins inside the viewBox
STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class Scale:
    """A linear y scale from `lo` to `hi` with round tick values."""

    lo: Decimal
    hi: Decimal
    ticks: tuple[Decimal, ...]

    def fraction(self, value: Decimal) -> float:
        """Where a value sits between lo (0.0) and hi (1.0)."""
        return float((value - self.lo) / (self.hi - self.lo))


def nice_scale(values: Sequence[Decimal], *, count: int = 4, integer: bool = False) -> Scale:
    """A scale that holds every value and zero, on round steps (1, 2, 2.5, 5 x 10^n)."""
    lo = min([Decimal(0), *values])
    hi = max([Decimal(0), *values])
    if lo == hi:  # no values, or all zeros
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = next(s * magnitude for s in STEPS if s * magnitude >= raw)
    if integer and step < 1:
        step = Decimal(1)
    first = (lo / step).to_integral_value(ROUND_FLOOR) * step
    last = (hi / step).to_integral_value(ROUND_CEILING) * step
    ticks: list[Decimal] = []
    tick = first
    while tick <= last:
        ticks.append(_plain(tick))
        tick += step
    return Scale(_plain(first), _plain(last), tuple(ticks))


def _plain(number: Decimal) -> Decimal:
    """The same number without an exponent (`2E+1` -> `20`), zero without a sign."""
    return Decimal(format(number, "f")) if number else Decimal(0)


@dataclass(frozen=True)
class Point:
    """One bucket's value: where it is on the time axis and what it says."""

    bucket: int  # index of the bucket on the x axis
    value: Decimal
    at: str  # the bucket's start, as the API gave it (for data-at)
    label: str  # for people: the bucket and the value, formatted


@dataclass(frozen=True)
class LineChart:
    """What to draw: buckets on x, points on y, and words for people and assistive technology."""

    key: str  # unique on the page: ids and data-series
    title: str
    description: str
    buckets: Sequence[str]  # labels of every bucket, in order
    points: Sequence[Point]
    tick_label: Callable[[Decimal], str]
    integer: bool = False
    empty_text: str = "No calls in this range."


def _x(bucket: int, count: int) -> float:
    width = WIDTH - LEFT - RIGHT
    return LEFT + width * (bucket + 0.5) / max(count, 1)


def _y(scale: Scale, value: Decimal) -> float:
    height = HEIGHT - TOP - BOTTOM
    return TOP + height * (1 - scale.fraction(value))


def _n(number: float) -> str:
    return f"{number:.1f}"


def path_of(points: Sequence[Point], scale: Scale, count: int) -> str:
    """The line's `d`: a new segment wherever a bucket between two points has no data."""
    parts: list[str] = []
    previous: int | None = None
    for point in points:
        move = "L" if previous is not None and point.bucket == previous + 1 else "M"
        parts.append(f"{move}{_n(_x(point.bucket, count))},{_n(_y(scale, point.value))}")
        previous = point.bucket
    return " ".join(parts)


def _x_labels(buckets: Sequence[str]) -> list[tuple[int, str]]:
    """First, middle and last bucket (fewer when there are fewer buckets)."""
    if not buckets:
        return []
    picks = sorted({0, (len(buckets) - 1) // 2, len(buckets) - 1})
    return [(i, buckets[i]) for i in picks]


def render(chart: LineChart) -> Markup:
    """The chart as an `<svg role="img">` with a title, a description and one circle per point."""
    ids = f"chart-{chart.key}"
    count = len(chart.buckets)
    scale = nice_scale([p.value for p in chart.points], integer=chart.integer)
    out = [
        f'<svg class="chart" id="{ids}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" tabindex="0"'
        f' aria-labelledby="{ids}-title" aria-describedby="{ids}-desc"'
        f' data-series="{escape(chart.key)}" data-points="{len(chart.points)}" data-buckets="{count}">',
        f'<title id="{ids}-title">{escape(chart.title)}</title>',
        f'<desc id="{ids}-desc">{escape(chart.description)}</desc>',
        '<g class="chart-grid" aria-hidden="true">',
    ]
    for tick in scale.ticks:
        y = _n(_y(scale, tick))
        zero = " chart-zero" if tick == 0 else ""
        out.append(f'<line class="chart-rule{zero}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="chart-tick" x="{LEFT - 4}" y="{y}" text-anchor="end"'
                   f' dominant-baseline="middle">{escape(chart.tick_label(tick))}</text>')
    for i, label in _x_labels(chart.buckets):
        anchor = "start" if i == 0 and count > 1 else "end" if i == count - 1 and count > 1 else "middle"
        out.append(f'<text class="chart-tick" x="{_n(_x(i, count))}" y="{HEIGHT - 8}"'
                   f' text-anchor="{anchor}">{escape(label)}</text>')
    out.append("</g>")
    if not chart.points:
        out.append(f'<text class="chart-empty" x="{(LEFT + WIDTH - RIGHT) // 2}" y="{HEIGHT // 2}"'
                   f' text-anchor="middle">{escape(chart.empty_text)}</text>')
    else:
        out.append(f'<path class="chart-line" d="{path_of(chart.points, scale, count)}"/>')
        out.append('<g class="chart-points">')
        for p in chart.points:
            out.append(
                f'<circle class="point" cx="{_n(_x(p.bucket, count))}" cy="{_n(_y(scale, p.value))}" r="3"'
                f' data-at="{escape(p.at)}" data-value="{escape(str(p.value))}">'
                f'<title>{escape(p.label)}</title></circle>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
