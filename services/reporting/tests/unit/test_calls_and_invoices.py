"""Summary arithmetic (true weighted totals) and invoice drafts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reporting.domain.calls import PeriodRow, Totals, total_of
from reporting.domain.invoice import draft_invoice


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


def test_invoice_lines_subtotal_tax_total() -> None:
    rows = [
        PeriodRow(date(2030, 1, 2), Totals(attempts=3, connected=2, billed_duration_s=120,
                                           charge=Decimal("1.23456"))),
        PeriodRow(date(2030, 1, 1), Totals(attempts=1, connected=1, billed_duration_s=60,
                                           charge=Decimal("2"))),
        PeriodRow(date(2030, 1, 3), Totals()),
    ]
    draft = draft_invoice(rows, tax_rate=Decimal("19"), currency="EUR")
    assert [line.day for line in draft.lines] == [date(2030, 1, 1), date(2030, 1, 2)]
    assert draft.subtotal == Decimal("3.2346")
    assert draft.tax == Decimal("0.6146")
    assert draft.total == Decimal("3.8492")
    assert (draft.period_from, draft.period_to) == (date(2030, 1, 1), date(2030, 1, 2))
