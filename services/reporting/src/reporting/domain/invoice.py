"""Invoices as documents: lines per day, late usage, rounding to minor units, status. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from shared.money import minor_units, round_minor

ZERO = Decimal(0)
MINUTE = Decimal(60)
LineKind = Literal["usage", "late_usage"]
Status = Literal["open", "paid", "overdue", "void"]
ROUNDING_NOTE = (
    "Amounts are rounded half-even to the currency's minor units ({units} decimals, ISO 4217)"
    " on the total of each line; tax is rounded once, on the subtotal."
)


class DayAlreadyInvoiced(Exception):
    """One of the days is on another invoice already (each customer's day is invoiced once)."""


@dataclass(frozen=True)
class Usage:
    """Additive call figures of one day (charge exact, before rounding)."""

    attempts: int
    connected: int
    billed_duration_s: int
    charge: Decimal

    def minus(self, other: Usage) -> Usage:
        """What this day has beyond what was billed already."""
        return Usage(self.attempts - other.attempts, self.connected - other.connected,
                     self.billed_duration_s - other.billed_duration_s, self.charge - other.charge)

    @property
    def anything(self) -> bool:
        """Calls or money to bill."""
        return self.attempts > 0 or self.charge != ZERO


@dataclass(frozen=True)
class InvoiceLine:
    """One line: a day's usage, or usage of an invoiced day that arrived after its invoice."""

    day: date
    kind: LineKind
    usage: Usage
    amount: Decimal  # the line's charge rounded to the currency's minor units

    @property
    def billed_minutes(self) -> Decimal:
        """Billed duration in minutes, two decimals."""
        return (Decimal(self.usage.billed_duration_s) / MINUTE).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class InvoiceDraft:
    """What an invoice will say, before it is numbered and stored."""

    currency: str
    tax_rate: Decimal
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    @property
    def minor_units(self) -> int:
        """The currency's ISO 4217 exponent the amounts are rounded to."""
        return minor_units(self.currency)

    @property
    def usage_days(self) -> list[date]:
        """The days newly invoiced (not late usage)."""
        return [line.day for line in self.lines if line.kind == "usage"]

    @property
    def period_from(self) -> date:
        """The first day of the invoice's own usage (the first late day when it has none)."""
        return min(self.usage_days or [line.day for line in self.lines])

    @property
    def period_to(self) -> date:
        """The last day of the invoice's own usage."""
        return max(self.usage_days or [line.day for line in self.lines])


def late_usage(now: dict[date, Usage], billed: dict[date, Usage]) -> dict[date, Usage]:
    """Usage of invoiced days beyond what their invoices billed (records that came late)."""
    out: dict[date, Usage] = {}
    for day, usage in now.items():
        extra = usage.minus(billed.get(day, Usage(0, 0, 0, ZERO)))
        if extra.anything:
            out[day] = extra
    return out


def draft_invoice(
    days: dict[date, Usage], late: dict[date, Usage], *, tax_rate: Decimal, currency: str
) -> InvoiceDraft:
    """Lines (late usage first, then each day with calls), subtotal, tax on it, total; rounded."""
    lines = [InvoiceLine(d, "late_usage", u, round_minor(u.charge, currency))
             for d, u in sorted(late.items())]
    lines += [InvoiceLine(d, "usage", u, round_minor(u.charge, currency))
              for d, u in sorted(days.items()) if u.attempts]
    subtotal = sum((line.amount for line in lines), ZERO)
    tax = round_minor(subtotal * tax_rate / 100, currency)
    return InvoiceDraft(currency=currency, tax_rate=tax_rate, lines=tuple(lines), subtotal=subtotal,
                        tax=tax, total=subtotal + tax)


def amount_due(total: Decimal, paid: Decimal, credited: Decimal) -> Decimal:
    """What is still owed on an invoice (never below zero)."""
    return max(ZERO, total - paid - credited)


def settled_status(status: Status, total: Decimal, paid: Decimal, credited: Decimal) -> Status:
    """An open or overdue invoice with nothing left to pay becomes paid; others stay as they are."""
    if status in ("open", "overdue") and amount_due(total, paid, credited) == ZERO:
        return "paid"
    return status


def is_overdue(status: Status, due_date: date, today: date) -> bool:
    """An open invoice whose due date has passed."""
    return status == "open" and today > due_date
