"""The summary charts' SVG: scales, empty series, one point, all zeros, negative charge, buckets."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from gateway.web.charts import HEIGHT, LineChart, Point, nice_scale, path_of, render
from gateway.web.summary_charts import bucket_of, buckets_of, summary_charts

D = Decimal


def chart(values: list[tuple[int, str]], buckets: int = 5) -> LineChart:
    points = [Point(b, D(v), f"2026-12-0{b + 1}", f"day {b}: {v}") for b, v in values]
    return LineChart(key="t", title="Test per day", description="A test.", buckets=[f"d{i}" for i in range(buckets)],
                     points=points, tick_label=lambda v: f"{v:f}")


def circles(svg: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w[\w-]*)="([^"]*)"', c)) for c in re.findall(r"<circle [^>]*>", svg)]


def test_scales_hold_zero_and_every_value_on_round_steps() -> None:
    scale = nice_scale([D("54.33"), D("12")])
    assert (scale.lo, scale.hi, scale.ticks) == (D(0), D(60), (D(0), D(20), D(40), D(60)))
    assert nice_scale([D(1234567)]).ticks[-1] == D(1500000)  # no exponents in the labels
    assert str(nice_scale([D(1234567)]).ticks[-1]) == "1500000"
    small = nice_scale([D("0.0042")])
    assert small.hi == D("0.006") and small.fraction(D("0.003")) == 0.5
    assert nice_scale([D(3)], integer=True).ticks == (D(0), D(1), D(2), D(3))
    assert nice_scale([D("0.2")], integer=True).ticks == (D(0), D(1))  # counts have no fractional ticks


def test_an_empty_series_says_so_and_draws_no_point() -> None:
    svg = str(render(chart([])))
    assert 'data-points="0"' in svg and "No calls in this range." in svg
    assert "<circle" not in svg and "chart-line" not in svg
    assert nice_scale([]).ticks[0] == D(0) and nice_scale([]).hi == D(1)


def test_one_point_is_drawn_alone_in_its_bucket() -> None:
    svg = str(render(chart([(2, "7")])))
    (point,) = circles(svg)
    assert point["data-value"] == "7" and point["data-at"] == "2026-12-03"
    assert float(point["cx"]) == 66 + 244 * 2.5 / 5  # the middle of the third of five buckets
    assert re.search(r'<path class="chart-line" d="M[\d.]+,[\d.]+"/>', svg)  # a move, no line
    assert "<title>day 2: 7</title>" in svg


def test_all_zeros_sit_on_the_zero_rule() -> None:
    svg = str(render(chart([(0, "0"), (1, "0"), (2, "0")])))
    ys = {c["cy"] for c in circles(svg)}
    zero = re.search(r'<line class="chart-rule chart-zero" [^>]*y1="([\d.]+)"', svg)
    assert zero and ys == {zero.group(1)} and float(zero.group(1)) == HEIGHT - 26


def test_a_negative_charge_goes_below_the_zero_rule() -> None:
    svg = str(render(chart([(0, "1.25"), (1, "-0.5"), (2, "0.3")])))
    zero = re.search(r'<line class="chart-rule chart-zero" [^>]*y1="([\d.]+)"', svg)
    assert zero
    y = {c["data-value"]: float(c["cy"]) for c in circles(svg)}
    assert y["-0.5"] > float(zero.group(1)) > y["0.3"] > y["1.25"]  # svg y grows downwards
    assert ">-0.5<" in svg  # the lowest tick


def test_the_line_breaks_over_buckets_without_calls() -> None:
    points = chart([(0, "1"), (1, "2"), (3, "3")]).points
    d = path_of(points, nice_scale([p.value for p in points]), 5)
    assert [part[0] for part in d.split()] == ["M", "L", "M"]


def test_text_is_escaped() -> None:
    bad = LineChart(key="x", title="<b>", description="a & b", buckets=["<i>"], points=[],
                    tick_label=lambda v: "<t>")
    svg = str(render(bad))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "a &amp; b" in svg and "<t>" not in svg


def summary(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    totals = {"attempts": 9, "asr": "66.67", "acd_s": "55.0", "charge": "1.05"}
    return {"from": "2026-11-06", "to": "2026-12-06", "as_of": "2026-12-06T03:10:00Z", "rows": rows,
            "totals": totals, **extra}


def test_summary_charts_one_point_per_row_in_the_days_of_the_range() -> None:
    rows = [{"period_start": "2026-12-01", "attempts": 4, "asr": "50.00", "acd_s": "120.0", "charge": "1.2500"},
            {"period_start": "2026-12-05", "attempts": 5, "asr": "80.00", "acd_s": "30.0", "charge": "-0.2000"}]
    charts = {c.key: c for c in summary_charts(summary(rows), "daily", "EUR")}
    assert list(charts) == ["attempts", "asr", "acd-s", "charge"]
    assert all(c.points == 2 for c in charts.values())
    charge = str(charts["charge"].svg)
    assert 'data-buckets="31"' in charge and "-€0.20" in charge and "whole range €1.05" in charge
    assert "<title>2026-12-01 UTC: ASR 50.00 %</title>" in str(charts["asr"].svg)
    assert [c["data-value"] for c in circles(str(charts["asr"].svg))] == ["50.00", "80.00"]


def test_live_is_per_hour_over_the_last_24_hours() -> None:
    rows = [{"period_start": "2026-12-06T02:00:00Z", "attempts": 3, "asr": "0.00", "acd_s": "0", "charge": "0"}]
    (attempts, *_) = summary_charts(summary(rows), "live", "USD")
    svg = str(attempts.svg)
    assert 'data-buckets="24"' in svg and attempts.points == 1
    assert "2026-12-06 02:00 UTC: Attempts 3" in svg and ">03:00<" in svg and ">04:00<" in svg


def test_weekly_and_monthly_buckets() -> None:
    assert str(bucket_of("weekly", "2026-12-03")) == "2026-11-30"  # ISO weeks start on Monday
    assert str(bucket_of("monthly", "2026-12-03")) == "2026-12-01"
    months = buckets_of({"from": "2025-12-06", "to": "2026-12-06", "rows": []}, "monthly")
    assert len(months) == 13 and str(months[0]) == "2025-12-01" and str(months[-1]) == "2026-12-01"
    weeks = buckets_of({"from": "2026-09-14", "to": "2026-12-06", "rows": []}, "weekly")
    assert len(weeks) == 12 and all(w.weekday() == 0 for w in weeks)
