"""Jinja filters for people: money in the currency's minor units, percentages, times in UTC.

The API keeps exact decimals; only the pages round (half-even, shared.money) for reading.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.contracts.alerts import MONEY_AREAS
from shared.money import round_minor

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}  # others are shown by their code


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money(value: Any, currency: str | None = None) -> str:
    """`€1,234.50`, `-$3.10`, `1,200 SEK`: minor units, grouped, the symbol or the code."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    code = (currency or "").upper()
    rounded = round_minor(number, code) if code else number
    text = f"{abs(rounded):,f}"
    sign = "-" if rounded < 0 else ""
    if code in SYMBOLS:
        return f"{sign}{SYMBOLS[code]}{text}"
    return f"{sign}{text} {code}".rstrip()


def percent(value: Any) -> str:
    """`12.35 %`: two places."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    return f"{number.quantize(Decimal('0.01')):f} %"


def utc(value: Any) -> str:
    """`2026-12-06 01:23:45 UTC`: an ISO time (or datetime) in UTC, the zone said."""
    if value is None or value == "":
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_value(value: Any, area: str, currency: str | None = None) -> str:
    """An alert's value or threshold as its area measures it: money, a percentage, seconds, or a count."""
    if area in MONEY_AREAS:
        return money(value, currency)
    if area == "asr":
        return percent(value)
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    if area in ("acd", "pdd"):
        return f"{number.quantize(Decimal('0.1')):f} s"
    return f"{number.normalize():f}"


FILTERS = {"money": money, "percent": percent, "utc": utc, "alert_value": alert_value}
