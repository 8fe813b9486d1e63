"""The rebuild's COPY rows equal the live audit entries, and the one-pass diff equals redact-then-diff."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from reporting.domain.audit import _changed_field, diff_of, entry_of, redact
from reporting.projections.audit import COLUMNS, row_of
from shared.contracts.wire import envelope_of
from shared.envelope import Actor, EventEnvelope, Metadata


def reference_diff(event_type: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """diff_of as it was before the one-pass version: redact the whole data, then diff it."""
    clean = redact(data)
    changes = clean.get("changes")
    if isinstance(changes, dict) and all(isinstance(v, dict) for v in changes.values()):
        return {k: {"old": v.get("old"), "new": v.get("new")} for k, v in changes.items()}, None
    if "old" in clean and "new" in clean:
        out = {_changed_field(event_type): {"old": clean["old"], "new": clean["new"]}}
        for key in clean:
            if f"old_{key}" in clean:
                out[key] = {"old": clean[f"old_{key}"], "new": clean[key]}
        return out, None
    if event_type.endswith("Created"):
        return {k: {"old": None, "new": v} for k, v in clean.items()}, None
    return {}, clean


ENC = "enc:v1:k1:" + "QUJD" * 8  # personal data as the customer service stores it (opened at query time)
SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("CustomerCreated", {"name": "x", "paypal_email": ENC, "api_key": "k", "tags": ["a"],
                         "address": {"line1": ENC, "country": "DE", "secret_answer": "s"}}),
    ("CustomerUpdated", {"changes": {"notes": {"old": "", "new": "n"}, "password": {"old": "a", "new": "b"},
                                     "address": {"old": {"line1": ENC, "token": "t"}, "new": None},
                                     "tags": {"old": ["a"], "new": [{"auth_token": "x", "v": 1}]}}}),
    ("CustomerUpdated", {"changes": {"channels": {"old": 1, "new": 2}, "api_key": "not a dict"}}),
    ("CustomerUpdated", {"changes": {"channels": {"old": 1}, "notes": 5}}),  # not a diff: data kept
    ("CustomerUpdated", {"changes": {}}),
    ("CustomerUpdated", {"changes": "text", "old": 1, "new": 2}),
    ("CustomerStatusChanged", {"old": "active", "new": "penalty", "until": None, "old_until": "2030-01-01"}),
    ("SomethingCreated", {"old": 1, "new": 2, "secret": "s", "code": "123"}),
    ("SomethingCreated", {}),
    ("VerificationSucceeded", {"customer_id": "c1", "code": "123456", "contact": {"password_hash": "h"}}),
    ("PaymentRecorded", {"customer_id": 42, "amount": "1.50", "lines": [{"token": "t", "n": 1}, 3]}),
    ("AlertFired", {"customer_id": "", "threshold": 0.5}),
]


@pytest.mark.parametrize(("event_type", "data"), SHAPES)
def test_the_one_pass_diff_equals_redacting_first(event_type: str, data: dict[str, Any]) -> None:
    assert orjson.dumps(diff_of(event_type, data)) == orjson.dumps(reference_diff(event_type, data))


def test_the_one_pass_diff_equals_redacting_first_on_random_shapes() -> None:
    rng = random.Random(7)
    keys = ["name", "old", "new", "changes", "token", "password", "code", "notes", "until", "old_until",
            "old_name", "customer_id", "api_key", "x"]

    def value(depth: int) -> Any:
        kind = rng.randrange(6 if depth < 3 else 3)
        if kind == 0:
            return rng.choice([None, 1, "s", ENC, 2.5, True])
        if kind in (1, 2):
            return rng.choice(["v", 0, None])
        if kind == 3:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(3000):
        data = {rng.choice(keys): value(0) for _ in range(rng.randrange(5))}
        event_type = rng.choice(["CustomerCreated", "CustomerUpdated", "CustomerNameChanged", "Other"])
        assert orjson.dumps(diff_of(event_type, data)) == orjson.dumps(reference_diff(event_type, data)), data


def envelope(event_type: str, data: dict[str, Any], category: str, i: int) -> EventEnvelope:
    actor = Actor(kind="operator", id="tok-1", name="alice", ip="192.0.2.7") if i % 2 else Actor()
    return EventEnvelope(type=event_type, category=category, stream_id=str(uuid.uuid4()), version=i + 1,
                         occurred_at=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=i), data=data,
                         metadata=Metadata(actor=actor, correlation_id=uuid.uuid4().hex, reason="r" if i % 3 else None,
                                           causation_id=None if i % 2 else "c"))


@pytest.mark.parametrize("category", ["customer", "verification", "billing"])
def test_a_copy_row_equals_the_live_entry(category: str) -> None:
    for i, (event_type, data) in enumerate(SHAPES):
        raw = envelope(event_type, data, category, i).model_dump_json().encode()
        entry = entry_of(envelope_of(raw), stream="S", seq=i + 9, raw=raw.decode())
        row = row_of("S", i + 9, raw)
        assert len(row) == len(COLUMNS)
        live = {c: getattr(entry, c) for c, _ in COLUMNS}
        live["changes"] = orjson.dumps(live["changes"]).decode()
        live["data"] = None if live["data"] is None else orjson.dumps(live["data"]).decode()
        assert str(row[0]) == live.pop("event_id")
        assert dict(zip([c for c, _ in COLUMNS][1:], row[1:], strict=True)) == live
