"""Summary arithmetic (true weighted totals) and invoice drafts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reporting.application.schedules import closed_period
from reporting.domain.calls import PeriodRow, Totals, total_of
from reporting.domain.invoice import Usage, amount_due, draft_invoice, is_overdue, late_usage, settled_status
from shared.money import minor_units, round_minor


def test_totals_are_weighted_not_averages_of_averages() -> None:
    busy = Totals(attempts=100, connected=50, billed_duration_s=6000, charge=Decimal("10"),
                  cost=Decimal("8"), pdd_ms_sum=100 * 2000, pdd_samples=100)
    quiet = Totals(attempts=1, connected=1, billed_duration_s=600, charge=Decimal("1"),
                   cost=Decimal("0.5"), pdd_ms_sum=100, pdd_samples=1)
    total = total_of([PeriodRow(date(2030, 1, 1), busy), PeriodRow(date(2030, 1, 2), quiet)])
    figures = total.figures()
    assert figures["asr"] == Decimal("50.50")  # 51 / 101, not (50 + 100) / 2
    assert figures["acd_s"] == Decimal("129.41")  # 6600 / 51
    assert figures["avg_pdd_ms"] == Decimal("1981.19")  # 200100 / 101
    assert figures["profit"] == Decimal("2.5000")
    assert figures["profit_pct"] == Decimal("22.73")


def test_empty_totals_have_zero_ratios() -> None:
    figures = Totals().figures()
    assert figures["asr"] == Decimal("0.00") and figures["acd_s"] == Decimal("0.00")


def test_invoice_lines_rounded_half_even_to_minor_units() -> None:
    days = {
        date(2030, 1, 2): Usage(3, 2, 120, Decimal("1.23456")),
        date(2030, 1, 1): Usage(1, 1, 60, Decimal("2.125")),
        date(2030, 1, 3): Usage(0, 0, 0, Decimal(0)),
    }
    draft = draft_invoice(days, {}, tax_rate=Decimal("19"), currency="EUR")
    assert [line.day for line in draft.lines] == [date(2030, 1, 1), date(2030, 1, 2)]
    assert [line.amount for line in draft.lines] == [Decimal("2.12"), Decimal("1.23")]  # 2.125 -> 2.12
    assert draft.subtotal == Decimal("3.35")
    assert draft.tax == Decimal("0.64")  # 0.6365
    assert draft.total == Decimal("3.99")
    assert (draft.period_from, draft.period_to) == (date(2030, 1, 1), date(2030, 1, 2))
    assert draft.lines[1].billed_minutes == Decimal("2.00")


def test_exponents_of_iso_4217() -> None:
    assert (minor_units("EUR"), minor_units("jpy"), minor_units("BHD")) == (2, 0, 3)
    assert round_minor(Decimal("2.5"), "JPY") == Decimal("2")
    assert round_minor(Decimal("3.5"), "JPY") == Decimal("4")
    assert round_minor(Decimal("1.0005"), "BHD") == Decimal("1.000")
    assert round_minor(Decimal("1.0015"), "BHD") == Decimal("1.002")
    assert str(round_minor(Decimal("-0.001"), "EUR")) == "0.00"
    draft = draft_invoice({date(2030, 1, 1): Usage(1, 1, 60, Decimal("100.5"))}, {},
                          tax_rate=Decimal("10"), currency="JPY")
    assert (draft.subtotal, draft.tax, draft.total) == (Decimal("100"), Decimal("10"), Decimal("110"))


def test_late_usage_is_what_came_after_the_invoice() -> None:
    day, other = date(2030, 1, 1), date(2030, 1, 2)
    billed = {day: Usage(2, 1, 60, Decimal("0.50")), other: Usage(1, 1, 60, Decimal("1"))}
    now = {day: Usage(3, 2, 180, Decimal("0.80")), other: Usage(1, 1, 60, Decimal("1"))}
    assert late_usage(now, billed) == {day: Usage(1, 1, 120, Decimal("0.30"))}
    draft = draft_invoice({}, late_usage(now, billed), tax_rate=Decimal(0), currency="USD")
    assert [(x.day, x.kind, x.amount) for x in draft.lines] == [(day, "late_usage", Decimal("0.30"))]


def test_status_rules() -> None:
    assert amount_due(Decimal("10"), Decimal("4"), Decimal("7")) == Decimal(0)
    assert settled_status("open", Decimal("10"), Decimal("4"), Decimal("6")) == "paid"
    assert settled_status("overdue", Decimal("10"), Decimal("4"), Decimal("5")) == "overdue"
    assert settled_status("void", Decimal("10"), Decimal("10"), Decimal("0")) == "void"
    assert is_overdue("open", date(2030, 1, 1), date(2030, 1, 2))
    assert not is_overdue("open", date(2030, 1, 1), date(2030, 1, 1))
    assert not is_overdue("paid", date(2030, 1, 1), date(2030, 2, 1))


def test_closed_periods_of_the_schedules() -> None:
    assert closed_period("weekly", date(2030, 1, 9)) == (date(2029, 12, 31), date(2030, 1, 6))  # a Wednesday
    assert closed_period("weekly", date(2030, 1, 7)) == (date(2029, 12, 31), date(2030, 1, 6))  # a Monday
    assert closed_period("monthly", date(2030, 3, 1)) == (date(2030, 2, 1), date(2030, 2, 28))
    assert closed_period("monthly", date(2030, 1, 31)) == (date(2029, 12, 1), date(2029, 12, 31))
