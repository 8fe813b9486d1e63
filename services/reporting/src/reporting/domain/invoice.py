"""Invoices from daily rows: one line per day, subtotal, tax at the customer's rate, total. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from reporting.domain.calls import MONEY, PeriodRow


class DayAlreadyInvoiced(Exception):
    """One of the days is on another invoice already (each customer's day is invoiced once)."""


@dataclass(frozen=True)
class InvoiceLine:
    """One invoiced day."""

    day: date
    attempts: int
    connected: int
    billed_duration_s: int
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDraft:
    """What an invoice will say, before it is stored."""

    currency: str
    tax_rate: Decimal
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    @property
    def period_from(self) -> date:
        """The first invoiced day."""
        return self.lines[0].day

    @property
    def period_to(self) -> date:
        """The last invoiced day."""
        return self.lines[-1].day


def draft_invoice(rows: list[PeriodRow], *, tax_rate: Decimal, currency: str) -> InvoiceDraft:
    """Lines for the days that had calls, subtotal, tax (percent of subtotal), total; 4 places."""
    lines = tuple(
        InvoiceLine(
            day=row.period_start, attempts=row.totals.attempts, connected=row.totals.connected,
            billed_duration_s=row.totals.billed_duration_s,
            amount=row.totals.charge.quantize(MONEY, ROUND_HALF_UP),
        )
        for row in sorted(rows, key=lambda r: r.period_start)
        if row.totals.attempts
    )
    subtotal = sum((line.amount for line in lines), Decimal(0))
    tax = (subtotal * tax_rate / 100).quantize(MONEY, ROUND_HALF_UP)
    return InvoiceDraft(
        currency=currency, tax_rate=tax_rate, lines=lines, subtotal=subtotal, tax=tax,
        total=subtotal + tax,
    )
