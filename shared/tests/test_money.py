"""The one definition of balance, available credit and call time left (product.md section 11)."""

from __future__ import annotations

from decimal import Decimal

from shared.money import (
    LedgerTotals,
    available,
    balance,
    daily_limit_reached,
    max_duration_s,
    may_dial,
    minor_units,
    shown,
    with_tax,
)

D = Decimal


def test_balance_is_payments_minus_refunds_plus_adjustments_and_credit_notes_minus_charges() -> None:
    totals = LedgerTotals(payments=D("100"), refunds=D("10"), adjustments=D("-5.5"), credit_notes=D("2"),
                          charges=with_tax(D("50"), D("19")))
    assert balance(totals) == D("27.00")
    assert available(balance(totals), D("-30")) == D("-3.00")  # a buffer kept back
    assert not may_dial(D("0")) and may_dial(D("0.0001"))


def test_tax_is_put_on_top_of_the_charge() -> None:
    assert with_tax(D("9.10"), D("10")) == D("10.010")
    assert with_tax(D("0.0123"), D("0")) == D("0.0123")


def test_daily_limit_zero_means_none() -> None:
    assert not daily_limit_reached(D("1000000"), D("0"))
    assert daily_limit_reached(D("3"), D("3")) and not daily_limit_reached(D("2.99"), D("3"))


def test_max_duration_floor_fee_and_cap() -> None:
    assert max_duration_s(D("5"), D("0.5"), D("1")) == 480
    assert max_duration_s(D("1.01"), D("0.6")) == 101  # floor(1.01 / 0.6 * 60) = floor(101.0)
    assert max_duration_s(D("0.99"), D("0.5"), D("1")) == 0  # the connect fee is not covered
    assert max_duration_s(D("-3"), D("0.5")) == 0
    assert max_duration_s(D("1000"), D("0.01")) == 14_400
    assert max_duration_s(D("1000"), D("0.01"), cap_s=60) == 60
    assert max_duration_s(D("1"), D("0")) == 14_400  # free minutes: the cap


def test_shown_rounds_half_even_to_the_currency_minor_units() -> None:
    assert (minor_units("EUR"), minor_units("JPY"), minor_units("KWD"), minor_units("CLF")) == (2, 0, 3, 4)
    assert shown(D("10.005"), "EUR") == "10.00" and shown(D("10.015"), "EUR") == "10.02"
    assert shown(D("1234.5"), "JPY") == "1234" and shown(D("1.2345"), "KWD") == "1.234"
    assert shown(D("-0.001"), "EUR") == "0.00"  # never "-0.00"
    assert shown(D("-0.01"), "usd") == "-0.01"
