"""The fast readers (shared.contracts.wire) hold to the pydantic models: same fields, same verdicts."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from pydantic import BaseModel, ValidationError
from shared.contracts.calls import CallCharge, CallRecord, CallStarted
from shared.contracts.wire import (
    WireCallCharge,
    WireCallRecord,
    WireCallStarted,
    WireEnvelope,
    call_charge_of,
    call_record_of,
    call_started_of,
    envelope_of,
)
from shared.envelope import Actor, EventEnvelope, Metadata

PAIRS: list[tuple[type[BaseModel], type[msgspec.Struct], Any]] = [
    (EventEnvelope, WireEnvelope, envelope_of),
    (CallRecord, WireCallRecord, call_record_of),
    (CallStarted, WireCallStarted, call_started_of),
    (CallCharge, WireCallCharge, call_charge_of),
]
RECORD = {"call_id": "c1", "customer_id": "k1", "started_at": "2026-10-01T10:00:00Z",
          "answered_at": "2026-10-01T10:00:03+02:00", "ended_at": "2026-10-01T10:02:03Z", "cli": "+4930",
          "destination": "+4940", "duration_s": 120, "billed_duration_s": 60, "charge": "0.0240",
          "cost": "0.01", "disposition": "answered", "sip_code": 200, "pdd_ms": 1200}
ENVELOPE = json.loads(EventEnvelope(
    type="CustomerUpdated", category="customer", stream_id="k1", version=3,
    data={"changes": {"notes": {"old": "", "new": "x"}}, "n": [1, 2.5, None]},
    metadata=Metadata(actor=Actor(kind="operator", id="t", name="n", ip="192.0.2.1"), reason="why"),
).model_dump_json())


@pytest.mark.parametrize(("model", "struct", "_"), PAIRS)
def test_the_same_fields(model: type[BaseModel], struct: type[msgspec.Struct], _: Any) -> None:
    assert set(struct.__struct_fields__) == set(model.model_fields)


def _cases() -> list[tuple[type[BaseModel], Any, bytes]]:
    record_cases: list[dict[str, Any]] = [
        RECORD, RECORD | {"answered_at": None, "pdd_ms": None, "sip_code": None, "extra": 1},
        RECORD | {"charge": 0.5, "cost": 3}, RECORD | {"duration_s": -1}, RECORD | {"pdd_ms": -5},
        RECORD | {"call_id": ""}, RECORD | {"customer_id": "x" * 101}, RECORD | {"disposition": "lost"},
        RECORD | {"started_at": "2026-10-01T10:00:00"}, RECORD | {"ended_at": "yesterday"},
        RECORD | {"charge": "abc"}, {k: v for k, v in RECORD.items() if k != "cost"},
    ]
    started = {"call_id": "c1", "customer_id": "k1", "started_at": "2026-10-01T10:00:00Z"}
    started_cases = [started, started | {"started_at": "2026-10-01T10:00:00"}, started | {"call_id": ""},
                     {"call_id": "c1"}]
    envelope_cases = [
        ENVELOPE, ENVELOPE | {"event_id": "not-a-uuid"}, ENVELOPE | {"version": "x"},
        ENVELOPE | {"metadata": {"actor": {"kind": "robot"}}}, ENVELOPE | {"data": [1]},
        {k: v for k, v in ENVELOPE.items() if k != "category"}, ENVELOPE | {"metadata": {}},
        ENVELOPE | {"occurred_at": "2026-13-01T00:00:00Z"},
    ]
    cases = [(CallRecord, call_record_of, json.dumps(c).encode()) for c in record_cases]
    cases += [(CallStarted, call_started_of, json.dumps(c).encode()) for c in started_cases]
    charge_cases = [*record_cases, {"call_id": "c1", "customer_id": "k1", "started_at": "2026-10-01T10:00:00Z",
                                    "charge": "1.5"}, {"call_id": "c1", "customer_id": "k1", "charge": "1"}]
    cases += [(CallCharge, call_charge_of, json.dumps(c).encode()) for c in charge_cases]
    cases += [(EventEnvelope, envelope_of, json.dumps(c).encode()) for c in envelope_cases]
    cases += [(m, f, raw) for m, _, f in PAIRS for raw in (b"{not json", b"[]", b"\xff")]
    return cases


@pytest.mark.parametrize(("model", "reader", "raw"), _cases())
def test_the_same_verdicts_and_values(model: type[BaseModel], reader: Any, raw: bytes) -> None:
    try:
        expected = model.model_validate_json(raw)
    except ValidationError:
        with pytest.raises(ValueError):
            reader(raw)
        return
    got = reader(raw)
    for name in model.model_fields:
        want = getattr(expected, name)
        have = getattr(got, name)
        if isinstance(want, BaseModel):
            assert msgspec.to_builtins(have) == json.loads(want.model_dump_json()), name
        else:
            assert have == want, name
