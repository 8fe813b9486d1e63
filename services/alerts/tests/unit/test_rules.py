"""Pure rule logic: windows with true averages, crossing with hysteresis, repeats, reasons, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from alerts.domain.partitions import partition_of
from alerts.domain.rules import Money, RuleState, reason_of, step, value_of
from alerts.domain.windows import CallWindow
from pydantic import ValidationError
from shared.contracts.alerts import AlertRule, AlertRuleIn
from shared.money import LedgerTotals

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
NO_MONEY = Money(LedgerTotals(), Decimal(0), Decimal(0), Decimal(0))


def rule(**over: Any) -> AlertRule:
    body = {"name": "ASR low", "scope": {"all": True}, "area": "asr", "operator": "lt", "threshold": "30",
            "reset_threshold": "31", "window_minutes": 10, "min_attempts": 0, **over}
    return AlertRule(**body, id=uuid4(), version=1, created_at=T0, updated_at=T0)


def test_window_sums_are_true_averages_over_the_minutes_in_range() -> None:
    w = CallWindow()
    for i in range(10):  # minute 0: 10 calls, 1 answered (60 s)
        w.add(1000, i == 0, 60, 100)
    for _ in range(2):  # minute 5: 2 answered calls of 30 s, no pdd
        w.add(1005, True, 30, None)
    f = w.figures(10)
    assert f.asr() == Decimal(300) / 12 and f.acd() == Decimal(120) / 3 and f.pdd() == 100
    assert w.figures(5).attempts == 2  # (1000, 1005]: minute 1000 is out
    assert w.figures(10).attempts_per_minute() == Decimal("1.2")


def test_min_attempts_holds_judgement_back() -> None:
    w = CallWindow()
    w.add(1, False, 0, None)
    assert value_of(rule(min_attempts=2), w, NO_MONEY) is None
    w.add(1, False, 0, None)
    assert value_of(rule(min_attempts=2), w, NO_MONEY) == 0


def test_fires_once_per_crossing_and_rearms_only_past_the_reset() -> None:
    r, s = rule(), RuleState(1)
    seq = [("29", True), ("20", False), ("30.5", False), ("31", False), ("29", False), ("31.5", False),
           ("29.9", True)]
    for i, (value, fires) in enumerate(seq):
        assert step(r, s, Decimal(value), T0 + timedelta(seconds=i)) is fires, (i, value)


def test_repeat_minutes_fires_again_while_still_crossed() -> None:
    r, s = rule(repeat_minutes=5), RuleState(1)
    assert step(r, s, Decimal(10), T0)
    assert not step(r, s, Decimal(10), T0 + timedelta(minutes=4, seconds=59))
    assert step(r, s, Decimal(10), T0 + timedelta(minutes=5))
    assert not step(r, s, Decimal("30.5"), T0 + timedelta(minutes=11))  # between: neither


def test_without_a_reset_of_its_own_it_rearms_when_no_longer_crossed() -> None:
    r, s = rule(area="invoice_overdue", operator="gt", threshold="0", reset_threshold=None), RuleState(1)
    assert step(r, s, Decimal(5), T0) and not step(r, s, Decimal(0), T0) and step(r, s, Decimal(1), T0)


def test_reason_names_rule_area_value_operator_threshold() -> None:
    assert reason_of(rule(), Decimal("20.000")) == "alert ASR low: asr 20 lt 30"
    assert reason_of(rule(area="balance", threshold="-5.5"), Decimal("-7.123")) == \
        "alert ASR low: balance -7.12 lt -5.5"


@pytest.mark.parametrize(("change", "needle"), [
    ({"threshold": "101"}, "0 to 100"),
    ({"window_minutes": 0}, "window_minutes"),
    ({"area": "mos"}, "area"),
    ({"scope": {}, "actions": {"penalty_minutes": 5}}, "penalty"),
    ({"scope": {"all": False}}, "scope"),
    ({"reset_threshold": "29"}, "reset_threshold"),
    ({"operator": "gt", "reset_threshold": "31"}, "reset_threshold"),
    ({"actions": {"penalty_minutes": 5, "set_inactive": True}}, "not both"),
    ({"actions": {"email_operators": ["not-an-address"]}}, "email"),
])
def test_bad_rules_are_refused(change: dict[str, Any], needle: str) -> None:
    body = {"name": "x", "scope": {"all": True}, "area": "asr", "operator": "lt", "threshold": "30", **change}
    with pytest.raises(ValidationError) as caught:
        AlertRuleIn(**body)
    assert needle in str(caught.value)


def test_partition_is_fnv1a_modulo_8() -> None:
    assert [partition_of(t) for t in ("a", "customer-1", "")] == [0xE40C292C % 8, partition_of("customer-1"),
                                                                   0x811C9DC5 % 8]


def test_the_domain_counts_the_partitions_shared_does() -> None:
    from alerts.domain import partitions
    from shared.partitions import PARTITIONS

    assert partitions.PARTITIONS == PARTITIONS


def test_one_pass_sums_equal_each_window_alone() -> None:
    w = CallWindow()
    for k, answered in [(100, True), (101, False), (103, True), (110, False), (112, True), (112, False)]:
        w.add(k, answered, 10, 5)
    together = w.figures_for([1, 3, 5, 10, 13, 20])
    assert together == {n: w.figures(n) for n in (1, 3, 5, 10, 13, 20)}
