"""Properties of the summary and invoice arithmetic: true averages, any order, no lost minor unit."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st
from reporting.domain.calls import MONEY, RATIO, PeriodRow, Totals, total_of
from reporting.domain.invoice import Usage, draft_invoice
from shared.money import minor_units

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=6, allow_nan=False)


@st.composite
def calls(draw: st.DrawFn) -> Totals:
    """The figures of one call, as the projection adds them up."""
    connected = draw(st.booleans())
    duration = draw(st.integers(0, 7200)) if connected else 0
    pdd = draw(st.none() | st.integers(0, 20_000))
    return Totals(attempts=1, connected=int(connected), duration_s=duration,
                  billed_duration_s=duration + draw(st.integers(0, 59)) if connected else 0,
                  charge=draw(money), cost=draw(money), pdd_ms_sum=pdd or 0, pdd_samples=int(pdd is not None))


def rows_of(groups: list[list[Totals]]) -> list[PeriodRow]:
    """One period row per group of calls, each row the sum of its calls."""
    rows = []
    for i, group in enumerate(groups):
        row = PeriodRow(date(2030, 1, 1) + timedelta(days=i))
        for one in group:
            row.totals += one
        rows.append(row)
    return rows


def quantized(value: Decimal, unit: Decimal = RATIO) -> Decimal:
    return value.quantize(unit, ROUND_HALF_UP)


@given(st.lists(st.lists(calls(), max_size=6), max_size=8), st.randoms(use_true_random=False))
def test_totals_are_true_averages_over_the_calls_in_any_order(groups: list[list[Totals]], rnd: random.Random) -> None:
    everything = [one for group in groups for one in group]
    figures = total_of(rows_of(groups)).figures()
    shuffled = rows_of(groups)
    rnd.shuffle(shuffled)
    assert total_of(shuffled).figures() == figures  # order of the rows does not matter
    flat = [PeriodRow(date(2030, 1, 1), one) for one in everything]
    assert total_of(flat).figures() == figures  # grouping into periods does not matter

    answered = [c for c in everything if c.connected]
    with_pdd = [c for c in everything if c.pdd_samples]
    assert figures["attempts"] == len(everything) and figures["connected"] == len(answered)
    if everything:
        assert figures["asr"] == quantized(Decimal(100 * len(answered)) / len(everything))
    if answered:  # the mean over answered calls, never a mean of the periods' means
        assert figures["acd_s"] == quantized(Decimal(sum(c.billed_duration_s for c in answered)) / len(answered))
    if with_pdd:
        assert figures["avg_pdd_ms"] == quantized(Decimal(sum(c.pdd_ms_sum for c in with_pdd)) / len(with_pdd))
    charge = sum((c.charge for c in everything), Decimal(0))
    cost = sum((c.cost for c in everything), Decimal(0))
    assert figures["charge"] == quantized(charge, MONEY) and figures["cost"] == quantized(cost, MONEY)
    assert figures["profit"] == quantized(charge - cost, MONEY)


@given(st.lists(st.lists(calls(), max_size=5), max_size=10),
       st.decimals(min_value=Decimal("0"), max_value=Decimal("30"), places=2, allow_nan=False),
       st.sampled_from(["EUR", "JPY", "BHD"]))
def test_an_invoice_adds_up_to_the_minor_unit(groups: list[list[Totals]], tax_rate: Decimal, currency: str) -> None:
    rows = rows_of(groups)
    usage = {r.period_start: Usage(r.totals.attempts, r.totals.connected, r.totals.billed_duration_s, r.totals.charge)
             for r in reversed(rows)}
    draft = draft_invoice(usage, {}, tax_rate=tax_rate, currency=currency)
    unit = Decimal(1).scaleb(-minor_units(currency))
    billed = [r for r in rows if r.totals.attempts]
    assert [line.day for line in draft.lines] == [r.period_start for r in billed]  # every day once, in order
    assert draft.subtotal == sum((line.amount for line in draft.lines), Decimal(0))  # the lines add up
    assert draft.total == draft.subtotal + draft.tax
    assert draft.tax == (draft.subtotal * tax_rate / 100).quantize(unit, ROUND_HALF_EVEN)
    exact = sum((r.totals.charge for r in billed), Decimal(0))
    # each line is rounded to the minor unit: the invoice is off the exact charges by at most half a unit a line
    assert abs(draft.subtotal - exact) <= unit / 2 * len(draft.lines)
    assert all(line.amount == r.totals.charge.quantize(unit, ROUND_HALF_EVEN)
               for line, r in zip(draft.lines, billed, strict=True))
