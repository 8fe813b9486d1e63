"""The console's filters: money in minor units with its symbol or code, percentages, UTC times."""

from __future__ import annotations

from decimal import Decimal

import pytest
from gateway.web.formatting import alert_value, money, percent, utc


@pytest.mark.parametrize(("value", "currency", "shown"), [
    ("1234.5", "EUR", "€1,234.50"), ("-3.1", "USD", "-$3.10"), (Decimal("1200"), "SEK", "1,200.00 SEK"),
    ("12.5", "JPY", "¥12"), ("0.125", "GBP", "£0.12"), ("0.135", "GBP", "£0.14"), ("7.0001", "KWD", "7.000 KWD"),
    (None, "EUR", ""), ("n/a", "EUR", "n/a"),
])
def test_money_in_minor_units_half_even(value: object, currency: str, shown: str) -> None:
    assert money(value, currency) == shown


def test_percent_and_utc() -> None:
    assert percent("12.345") == "12.34 %" and percent(Decimal(50)) == "50.00 %" and percent(None) == ""
    assert utc("2026-12-06T01:02:03+01:00") == "2026-12-06 00:02:03 UTC"
    assert utc("2026-12-06T01:02:03") == "2026-12-06 01:02:03 UTC"
    assert utc("yesterday") == "yesterday"


@pytest.mark.parametrize(("value", "area", "currency", "shown"), [
    ("0.5496", "available_credit", "EUR", "€0.55"),
    ("-12.5", "balance", "USD", "-$12.50"),
    ("20", "asr", None, "20.00 %"),
    ("31.26", "acd", None, "31.3 s"),
    ("12.000", "attempts_per_minute", None, "12"),
    (None, "asr", None, ""),
])
def test_alert_values_read_as_their_area_measures(value: object, area: str, currency: str | None,
                                                  shown: str) -> None:
    assert alert_value(value, area, currency) == shown
