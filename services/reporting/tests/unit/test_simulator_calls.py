"""The simulator's calls are valid call records with plausible figures."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from reporting.simulator import make_call
from shared.contracts.calls import CallRecord, CallStarted


def test_simulated_calls_are_valid_and_plausible() -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    calls = [make_call(rng, "c-1", now) for _ in range(2000)]
    records = [CallRecord.model_validate(record) for _, record in calls]
    assert all(CallStarted.model_validate(start).call_id == r.call_id for (start, _), r in zip(calls, records, strict=True))
    assert len({r.call_id for r in records}) == 2000
    answered = [r for r in records if r.connected]
    assert 0.45 < len(answered) / len(records) < 0.65
    assert all(r.billed_duration_s >= r.duration_s and r.billed_duration_s % 60 == 0 for r in answered)
    assert all(r.charge >= r.cost >= 0 for r in records)
    assert all(r.charge == Decimal(0) for r in records if not r.connected)
    assert all(r.ended_at >= r.started_at for r in records)
