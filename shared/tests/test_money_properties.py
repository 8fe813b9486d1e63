"""Properties of the money arithmetic: balance is its entries, rounding loses under a minor unit, calls never overspend."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from shared.money import (
    LedgerTotals,
    balance,
    has_minor_precision,
    max_duration_s,
    minor_units,
    round_minor,
    shown,
)

amounts = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=6, allow_nan=False)
positive = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=6, allow_nan=False)
currencies = st.sampled_from(["EUR", "USD", "JPY", "KWD", "CLF", "GBP"])
KINDS = {"payments": 1, "refunds": -1, "adjustments": 1, "credit_notes": 1, "charges": -1}


@given(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), positive | amounts), max_size=30))
def test_balance_is_the_signed_sum_of_its_entries_in_any_order(entries: list[tuple[str, Decimal]]) -> None:
    sums = dict.fromkeys(KINDS, Decimal(0))
    for kind, amount in entries:
        sums[kind] += amount
    expected = sum((KINDS[kind] * amount for kind, amount in entries), Decimal(0))
    assert balance(LedgerTotals(**sums)) == expected
    reversed_sums = dict.fromkeys(KINDS, Decimal(0))
    for kind, amount in reversed(entries):
        reversed_sums[kind] += amount
    assert balance(LedgerTotals(**reversed_sums)) == expected


@given(amounts, currencies)
def test_rounding_to_minor_units_moves_less_than_half_a_unit(amount: Decimal, currency: str) -> None:
    rounded = round_minor(amount, currency)
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert abs(rounded - amount) <= unit / 2
    assert has_minor_precision(rounded, currency) and round_minor(rounded, currency) == rounded
    assert not shown(amount, currency).startswith("-") or rounded < 0  # never "-0.00"


@given(st.lists(positive, min_size=1, max_size=20), currencies)
def test_lines_rounded_one_by_one_stay_within_half_a_unit_each_of_the_exact_total(
    lines: list[Decimal], currency: str
) -> None:
    unit = Decimal(1).scaleb(-minor_units(currency))
    total = sum((round_minor(line, currency) for line in lines), Decimal(0))
    assert has_minor_precision(total, currency)  # the invoice adds up in whole minor units
    assert abs(total - sum(lines, Decimal(0))) <= unit / 2 * len(lines)


@given(positive, st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=4, allow_nan=False),
       st.decimals(min_value=Decimal("0"), max_value=Decimal("5"), places=4, allow_nan=False),
       st.integers(1, 14_400))
def test_the_longest_call_allowed_never_costs_more_than_is_available(
    available: Decimal, rate: Decimal, fee: Decimal, cap: int
) -> None:
    seconds = max_duration_s(available, rate, fee, cap)
    assert 0 <= seconds <= cap
    if seconds and rate:
        assert fee + rate * seconds / 60 <= available  # affordable
        if seconds < cap:
            assert fee + rate * (seconds + 1) / 60 > available  # and one second more is not
    if available <= fee:
        assert seconds == 0
