"""Each customer's credit in memory, for the dial check: no round trip per request.

Two parts, each moving forward only: the card's part (currency, debit_limit,
daily_spend_limit and the completed payments, refunds and adjustments), ordered by the
customer's stream version; and the charges part (projections/ledger.py), ordered by the
`ledger_charges` row's `seq`. Balance, available credit and call time left are
`shared.money`'s, the same functions the balance query uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.money import (
    DEFAULT_MAX_CALL_DURATION_S,
    ZERO,
    LedgerTotals,
    available,
    balance,
    daily_limit_reached,
    max_duration_s,
    may_dial,
    shown,
)

from customer.projections.ledger import Charges


@dataclass(slots=True)
class Credit:
    """One customer's credit inputs, and the verdict made of them for one UTC day."""

    currency: str = "USD"
    debit_limit: Decimal = ZERO
    daily_limit: Decimal = ZERO
    paid: LedgerTotals = field(default_factory=LedgerTotals)
    version: int = -1
    charges: Decimal = ZERO
    day: date | None = None
    day_charges: Decimal = ZERO
    seq: int = -1
    credit_notes: Decimal = ZERO
    # made once per change or UTC day (see CreditBook.verdict)
    verdict: Verdict | None = None


# (UTC day number since 1970-01-01, reasons to refuse, the credit JSON, the same as bytes with the
# answer's closing brace, available credit)
Verdict = tuple[int, tuple[str, ...], str, bytes, Decimal]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value if value is not None else 0))


class CreditBook:
    """Credit of every customer; what the dial check adds to its answer."""

    def __init__(self, max_call_duration_s: int = DEFAULT_MAX_CALL_DURATION_S) -> None:
        self.cap_s = max_call_duration_s
        self.credits: dict[str, Credit] = {}

    def _get(self, customer_id: str) -> Credit:
        credit = self.credits.get(customer_id)
        if credit is None:
            credit = self.credits[customer_id] = Credit()
        return credit

    def set_customer(
        self, customer_id: str, version: int, fields: dict[str, Any], paid: LedgerTotals
    ) -> None:
        """The card's part at a stream version (older versions are ignored)."""
        credit = self._get(customer_id)
        if version < credit.version:
            return
        credit.version = version
        credit.currency = str(fields.get("currency") or "USD")
        credit.debit_limit = _dec(fields.get("debit_limit"))
        credit.daily_limit = _dec(fields.get("daily_spend_limit"))
        credit.paid = paid
        credit.verdict = None

    def set_charges(self, charges: Charges) -> None:
        """The charges part (an older `seq` is ignored)."""
        credit = self._get(charges.customer_id)
        if charges.seq <= credit.seq:
            return
        credit.seq, credit.charges = charges.seq, charges.charges
        credit.day, credit.day_charges = charges.day, charges.day_charges
        credit.credit_notes = charges.credit_notes
        credit.verdict = None

    def verdict(self, customer_id: str, day: int) -> Verdict:
        """Reasons to refuse (insufficient_credit, daily_spend_limit), the credit JSON, available.

        `day`: the UTC day number (`int(unix_time // 86400)`); the verdict is kept for that day.
        """
        credit = self.credits.get(customer_id)
        if credit is None:
            credit = Credit()
        cached = credit.verdict
        if cached is not None and cached[0] == day:
            return cached
        p = credit.paid
        totals = LedgerTotals(p.payments, p.refunds, p.adjustments, credit.credit_notes, credit.charges)
        bal = balance(totals)
        avail = available(bal, credit.debit_limit)
        today = date.fromordinal(_EPOCH_ORDINAL + day)
        today_charges = credit.day_charges if credit.day == today else ZERO
        reasons = tuple(
            r
            for r, on in (
                ("insufficient_credit", not may_dial(avail)),
                ("daily_spend_limit", daily_limit_reached(today_charges, credit.daily_limit)),
            )
            if on
        )
        cur = credit.currency
        text = f'{{"balance":"{shown(bal, cur)}","available":"{shown(avail, cur)}","currency":"{cur}"}}'
        credit.verdict = (day, reasons, text, text.encode() + b"}", avail)
        return credit.verdict

    def max_duration(self, available_: Decimal, rate: Any, connect_fee: Any) -> int:
        """Seconds of call the available credit pays for at this rate (ValueError: not a rate)."""
        try:
            rate_d = Decimal(str(rate))
            fee_d = Decimal(str(connect_fee)) if connect_fee is not None else ZERO
        except (InvalidOperation, ValueError):
            raise ValueError("rate_per_minute and connect_fee are decimal numbers") from None
        if not rate_d.is_finite() or not fee_d.is_finite() or rate_d < 0 or fee_d < 0:
            raise ValueError("rate_per_minute and connect_fee are finite and not negative")
        return max_duration_s(available_, rate_d, fee_d, self.cap_s)
