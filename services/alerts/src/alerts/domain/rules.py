"""Whether a rule fires: its value for a customer, crossing with hysteresis, repeats (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.contracts.alerts import CALL_AREAS, AlertRule
from shared.money import LedgerTotals, available, balance

from alerts.domain.windows import CallWindow, Figures

OPERATOR_WORDS = {"lt": "below", "gt": "above"}  # for messages to people


@dataclass(frozen=True, slots=True)
class Money:
    """A customer's money as the rules see it."""

    totals: LedgerTotals
    debit_limit: Decimal
    day_spend: Decimal
    overdue: Decimal


@dataclass(slots=True)
class RuleState:
    """One rule for one customer: armed (ready to fire) or fired, and when it last fired."""

    rule_version: int
    armed: bool = True
    last_fired_at: datetime | None = None


def value_of(
    rule: AlertRule, window: CallWindow, money: Money, sums: dict[int, Figures] | None = None
) -> Decimal | None:
    """The rule's value now; None when there is nothing to judge (too few calls, no calls).

    `sums`: window sums already made for this moment by window length (`CallWindow.figures_for`).
    """
    area = rule.area
    if area in CALL_AREAS:
        figures = sums.get(rule.window_minutes) if sums is not None else None
        if figures is None:
            figures = window.figures(rule.window_minutes)
        if figures.attempts == 0 or figures.attempts < rule.min_attempts:
            return None
        if area == "asr":
            return figures.asr()
        if area == "acd":
            return figures.acd()
        if area == "pdd":
            return figures.pdd()
        return figures.attempts_per_minute()
    if area == "balance":
        return balance(money.totals)
    if area == "available_credit":
        return available(balance(money.totals), money.debit_limit)
    if area == "daily_spend":
        return money.day_spend
    return money.overdue  # invoice_overdue: the amount due of the customer's overdue invoices


def crossed(operator: str, value: Decimal, threshold: Decimal) -> bool:
    """Beyond the threshold."""
    return value < threshold if operator == "lt" else value > threshold


def rearms(rule: AlertRule, value: Decimal) -> bool:
    """Back past the reset threshold (strictly: ASR below 30 fires, above 31 re-arms); with no reset
    threshold of its own (or the threshold itself), as soon as the value is no longer crossed."""
    if rule.reset == rule.threshold:
        return not crossed(rule.operator, value, rule.threshold)
    return value > rule.reset if rule.operator == "lt" else value < rule.reset


def step(rule: AlertRule, state: RuleState, value: Decimal, at: datetime) -> bool:
    """Move the state for a new value at event time `at`; True when the rule fires now."""
    if state.armed:
        if crossed(rule.operator, value, rule.threshold):
            state.armed = False
            state.last_fired_at = at
            return True
        return False
    if rearms(rule, value):
        state.armed = True
        return False
    if (rule.repeat_minutes is not None and crossed(rule.operator, value, rule.threshold)
            and (state.last_fired_at is None
                 or at - state.last_fired_at >= timedelta(minutes=rule.repeat_minutes))):
        state.last_fired_at = at
        return True
    return False


def shown_value(value: Decimal) -> str:
    """A value for people: at most 2 decimals, no exponent."""
    q = value.quantize(Decimal("0.01"))
    text = format(q, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def reason_of(rule: AlertRule, value: Decimal) -> str:
    """`alert <name>: <area> <value> <operator> <threshold>`, the status change's reason."""
    figures = f"{shown_value(value)} {rule.operator} {shown_value(rule.threshold)}"
    return f"alert {rule.name}: {rule.area} {figures}"


def applies(rule: AlertRule, customer_id: str, tags: tuple[str, ...]) -> bool:
    """Whether a rule watches this customer."""
    scope = rule.scope
    if scope.all:
        return True
    if scope.customer_id is not None:
        return str(scope.customer_id) == customer_id
    return scope.tag is not None and scope.tag in tags
