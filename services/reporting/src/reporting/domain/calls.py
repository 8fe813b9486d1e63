"""Call starts and records from the switch, and the summary arithmetic over them. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

MONEY = Decimal("0.0001")
RATIO = Decimal("0.01")
ZERO = Decimal(0)


@dataclass
class Totals:
    """Additive call figures of any set of calls; ratios derive from the sums, never averaged."""

    attempts: int = 0
    connected: int = 0
    duration_s: int = 0
    billed_duration_s: int = 0
    charge: Decimal = ZERO
    cost: Decimal = ZERO
    pdd_ms_sum: int = 0
    pdd_samples: int = 0

    def __iadd__(self, other: Totals) -> Totals:
        self.attempts += other.attempts
        self.connected += other.connected
        self.duration_s += other.duration_s
        self.billed_duration_s += other.billed_duration_s
        self.charge += other.charge
        self.cost += other.cost
        self.pdd_ms_sum += other.pdd_ms_sum
        self.pdd_samples += other.pdd_samples
        return self

    def figures(self) -> dict[str, object]:
        """The row as the API shows it: sums, and ratios computed from the sums."""
        profit = self.charge - self.cost
        return {
            "attempts": self.attempts,
            "connected": self.connected,
            "asr": _ratio(Decimal(self.connected) * 100, self.attempts, RATIO),
            "acd_s": _ratio(Decimal(self.billed_duration_s), self.connected, RATIO),
            "duration_s": self.duration_s,
            "billed_duration_s": self.billed_duration_s,
            "charge": self.charge.quantize(MONEY, ROUND_HALF_UP),
            "cost": self.cost.quantize(MONEY, ROUND_HALF_UP),
            "profit": profit.quantize(MONEY, ROUND_HALF_UP),
            "profit_pct": _ratio(profit * 100, self.charge, RATIO),
            "avg_pdd_ms": _ratio(Decimal(self.pdd_ms_sum), self.pdd_samples, RATIO),
        }


def _ratio(numerator: Decimal, denominator: Decimal | int, unit: Decimal) -> Decimal:
    if not denominator:
        return ZERO.quantize(unit)
    return (numerator / Decimal(denominator)).quantize(unit, ROUND_HALF_UP)


@dataclass
class PeriodRow:
    """Totals of one period (a day, an ISO week from its Monday, a month from its 1st)."""

    period_start: date
    totals: Totals = field(default_factory=Totals)


def total_of(rows: list[PeriodRow]) -> Totals:
    """The true total of several rows (sums first, ratios after)."""
    out = Totals()
    for row in rows:
        out += row.totals
    return out
