"""The one definition of balance, available credit and call time left (product.md section 11).

Pure functions on Decimal, used by every place that shows or decides on money: the dial
check, the balance query, the card's balance tile, the portal and invoices. Values are kept
exact; `shown` rounds them to the currency's minor units (ISO 4217 exponent) for display only,
so a decision is never taken on a rounded number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
HUNDRED = Decimal(100)
DEFAULT_MAX_CALL_DURATION_S = 14_400

# ISO 4217 currencies whose minor unit is not 2 digits (every other code has 2)
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """A customer's ledger summed up, in its currency: what balance is made of."""

    payments: Decimal = ZERO  # completed payments
    refunds: Decimal = ZERO  # completed refunds (positive amounts, subtracted)
    adjustments: Decimal = ZERO  # completed adjustments (either sign)
    credit_notes: Decimal = ZERO  # credit notes issued (section 13)
    charges: Decimal = ZERO  # call charges with the tax of each call's time


def with_tax(charge: Decimal, tax_percent: Decimal) -> Decimal:
    """A call's charge with the customer's tax on top: charge * (1 + tax/100)."""
    return charge * (1 + tax_percent / HUNDRED)


def balance(totals: LedgerTotals) -> Decimal:
    """Payments - refunds + adjustments + credit notes - charges with tax."""
    return totals.payments - totals.refunds + totals.adjustments + totals.credit_notes - totals.charges


def available(balance_: Decimal, debit_limit: Decimal) -> Decimal:
    """Balance + debit_limit: 0 prepaid, positive postpaid credit, negative a buffer kept back."""
    return balance_ + debit_limit


def may_dial(available_: Decimal) -> bool:
    """A call may start while available credit is above zero."""
    return available_ > ZERO


def daily_limit_reached(today_charges: Decimal, daily_spend_limit: Decimal) -> bool:
    """Today's (UTC) charges have reached the daily spend limit (0: no limit)."""
    return daily_spend_limit > ZERO and today_charges >= daily_spend_limit


def max_duration_s(
    available_: Decimal,
    rate_per_minute: Decimal,
    connect_fee: Decimal = ZERO,
    cap_s: int = DEFAULT_MAX_CALL_DURATION_S,
) -> int:
    """floor((available - connect_fee) / rate_per_minute * 60), within 0..cap_s.

    A rate of zero costs nothing per minute: the cap (or 0 when the connect fee is not covered).
    """
    left = available_ - connect_fee
    if left <= ZERO:
        return 0
    if rate_per_minute <= ZERO:
        return cap_s
    return min(cap_s, math.floor(left * 60 / rate_per_minute))


def minor_units(currency: str) -> int:
    """The ISO 4217 exponent: 2 for EUR/USD, 0 for JPY, 3 for KWD."""
    return _EXPONENTS.get(currency.upper(), 2)


def round_minor(amount: Decimal, currency: str) -> Decimal:
    """An amount rounded half-even to the currency's minor units, as a Decimal (never "-0").

    Invoices round each line's total with it (product.md section 13); `shown` is its text.
    """
    value = amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)
    return abs(value) if value.is_zero() else value


def has_minor_precision(amount: Decimal, currency: str) -> bool:
    """Is the amount a whole number of the currency's minor units (no finer digits)?"""
    return amount == round_minor(amount, currency)


def shown(amount: Decimal, currency: str) -> str:
    """An amount as shown to people and other systems: rounded half-even to minor units."""
    return format(round_minor(amount, currency), "f")
