"""Fast readers of the messages projections read in bulk: one C pass of parsing and checking.

`EventEnvelope.model_validate_json` and `CallRecord.model_validate_json` were most of a rebuild's
CPU (py-spy, docs/performance.md "Rebuilds and ingestion"); msgspec parses and checks the same
shapes several times faster. These mirror the pydantic models (shared.envelope, .calls), which
stay the schema: tests/test_wire.py holds the two to the same fields and the same verdicts on
good and malformed messages. The attributes are the models', so code reading either works on
both. A malformed message raises ValueError (`msgspec.ValidationError` is one).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

Aware = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class WireActor(msgspec.Struct, frozen=True):
    """Who caused a change (shared.envelope.Actor)."""

    kind: Literal["operator", "portal", "system"] = "system"
    id: str | None = None
    name: str = "system"
    ip: str | None = None


class WireMetadata(msgspec.Struct, frozen=True):
    """Context of a change (shared.envelope.Metadata)."""

    actor: WireActor = WireActor()
    correlation_id: str | None = None
    causation_id: str | None = None
    command_id: str | None = None
    reason: str | None = None


class WireEnvelope(msgspec.Struct, frozen=True):
    """One event as stored on a stream (shared.envelope.EventEnvelope)."""

    event_id: uuid.UUID
    type: str
    category: str
    stream_id: str
    version: int
    occurred_at: datetime
    schema_version: int = 1
    metadata: WireMetadata = WireMetadata()
    data: dict[str, Any] = {}
    position: int | None = None


class WireCallStarted(msgspec.Struct, frozen=True):
    """`calls.started.<customer_id>` (shared.contracts.calls.CallStarted)."""

    call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    started_at: Aware
    cli: str | None = None
    destination: str | None = None


class WireCallRecord(msgspec.Struct, frozen=True):
    """`calls.cdr.<customer_id>` (shared.contracts.calls.CallRecord)."""

    call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    started_at: Aware
    ended_at: Aware
    duration_s: NonNegative
    billed_duration_s: NonNegative
    charge: Decimal
    cost: Decimal
    disposition: Literal["answered", "busy", "no_answer", "failed", "cancelled"]
    answered_at: Aware | None = None
    cli: str | None = None
    destination: str | None = None
    sip_code: int | None = None
    pdd_ms: NonNegative | None = None


class WireCallCharge(msgspec.Struct, frozen=True):
    """The ledger's part of `calls.cdr.<customer_id>` (shared.contracts.calls.CallCharge)."""

    call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    started_at: Aware
    charge: Decimal


_ENVELOPE = msgspec.json.Decoder(WireEnvelope, strict=False)
_STARTED = msgspec.json.Decoder(WireCallStarted, strict=False)
_RECORD = msgspec.json.Decoder(WireCallRecord, strict=False)
_CHARGE = msgspec.json.Decoder(WireCallCharge, strict=False)


def envelope_of(raw: bytes) -> WireEnvelope:
    """An event envelope; ValueError when the bytes are not one."""
    return _ENVELOPE.decode(raw)


def call_started_of(raw: bytes) -> WireCallStarted:
    """A call start; ValueError when the bytes are not one."""
    return _STARTED.decode(raw)


def call_record_of(raw: bytes) -> WireCallRecord:
    """A call record; ValueError when the bytes are not one."""
    return _RECORD.decode(raw)


def call_charge_of(raw: bytes) -> WireCallCharge:
    """A call record's charge (the ledger, live and rebuilt); ValueError when the bytes are not one."""
    return _CHARGE.decode(raw)
