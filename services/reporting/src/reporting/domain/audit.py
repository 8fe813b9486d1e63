"""Audit entries from any event: who, when, from where, what, and the difference. Pure.

Deliberately generic over event shapes: the audit log records every event on the streams it
reads, also types this build does not know (a later feature, billing's). Registered types are
read in their current schema (`current_data`), so an old version is shown upcast.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from shared.contracts.events import REGISTRY
from shared.contracts.wire import WireEnvelope
from shared.envelope import EventEnvelope

# the pydantic model, or its fast reader's struct (shared.contracts.wire): the same attributes
Envelope = EventEnvelope | WireEnvelope

# keys whose values never reach the audit log, at any depth
SECRET_KEY = re.compile(
    r"password|passwd|passphrase|secret|token(?!_id$|_name$)|hash|(^|_)code$|api_?key|credential",
    re.I,
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class _SecretKeys(dict[object, bool]):
    """Key -> whether it names a secret, filled on first sight (keys repeat; bounded)."""

    def __missing__(self, key: object) -> bool:
        if len(self) >= 4096:
            self.clear()
        secret = self[key] = SECRET_KEY.search(str(key)) is not None
        return secret


# a dict look-up per key (C, no Python frame): a rebuild asks it for every key of every event
is_secret = _SecretKeys().__getitem__


_NESTED = (dict, list)


def redact(value: Any) -> Any:
    """A copy of value without any key that names a secret (scalars are not descended into:
    a rebuild redacts every event, and most values are scalars)."""
    if isinstance(value, dict):
        return {k: redact(v) if isinstance(v, _NESTED) else v
                for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list):
        return [redact(v) if isinstance(v, _NESTED) else v for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def action_of(event_type: str) -> str:
    """`CustomerStatusChanged` -> `status changed`; `ContactAdded` -> `contact added`."""
    words = _CAMEL.sub(" ", event_type).lower().split()
    if len(words) > 2 and words[0] == "customer":
        words = words[1:]
    if len(words) == 2 and words[0] == "customer":
        return words[1]
    return " ".join(words)


@functools.lru_cache(maxsize=1024)
def _changed_field(event_type: str) -> str:
    """`CustomerStatusChanged` -> `status` (the field an old/new event is about)."""
    words = _CAMEL.sub(" ", event_type).lower().split()
    if len(words) > 2 and words[0] == "customer":
        words = words[1:]
    return "_".join(words[:-1]) or "value"


def diff_of(event_type: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(changes as {field: {old, new}}, the remaining data when no diff can be derived)."""
    # the two common shapes are redacted as they are taken (no whole copy first: a rebuild diffs
    # every event); the result is that of redacting the data, then diffing it
    # (no call per field: _clean inlined, is_secret a dict look-up; a fifth of the rebuild's samples)
    changes = data.get("changes")
    if isinstance(changes, dict):
        out: dict[str, Any] = {}
        for k, v in changes.items():
            if is_secret(k):
                continue
            if not isinstance(v, dict):
                break
            old, new = v.get("old"), v.get("new")
            out[k] = {"old": redact(old) if isinstance(old, _NESTED) else old,
                      "new": redact(new) if isinstance(new, _NESTED) else new}
        else:
            return out, None
    if event_type.endswith("Created") and not ("old" in data and "new" in data):
        return {k: {"old": None, "new": redact(v) if isinstance(v, _NESTED) else v}
                for k, v in data.items() if not is_secret(k)}, None
    clean = redact(data)
    if "old" in clean and "new" in clean:
        out = {_changed_field(event_type): {"old": clean["old"], "new": clean["new"]}}
        for key in clean:
            if f"old_{key}" in clean:
                out[key] = {"old": clean[f"old_{key}"], "new": clean[key]}
        return out, None
    return {}, clean


def current_data(event: Envelope) -> dict[str, Any]:
    """The event's data in its type's current schema (old versions upcast through the registry)."""
    if event.type in REGISTRY and event.schema_version < REGISTRY.version_of(event.type):
        return REGISTRY.upcast(event.type, event.schema_version, event.data)
    return event.data


def customer_of(event: Envelope) -> str | None:
    """The customer an event is about: the stream of customer events, else `data.customer_id`."""
    if event.category == "customer":
        return event.stream_id
    value = event.data.get("customer_id")
    return str(value) if value else None


@dataclass(slots=True)
class AuditEntry:
    """One row of the audit log."""

    event_id: str
    stream: str
    seq: int
    customer_id: str | None
    category: str
    stream_id: str
    version: int
    type: str
    action: str
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str
    ip: str | None
    reason: str | None
    correlation_id: str | None
    causation_id: str | None
    changes: dict[str, Any]
    data: dict[str, Any] | None
    # the whole envelope, kept for customer events only: as-of folds it
    event: str | None


def _json_of(event: Envelope) -> str:
    if isinstance(event, EventEnvelope):
        return event.model_dump_json()
    return msgspec.json.encode(event).decode()


def entry_of(event: Envelope, *, stream: str, seq: int, raw: str | None = None) -> AuditEntry:
    """The audit entry of one event, as delivered at `seq` of `stream`."""
    changes, data = diff_of(event.type, current_data(event))
    meta = event.metadata
    keep = event.category == "customer"
    return AuditEntry(
        event_id=str(event.event_id), stream=stream, seq=seq, customer_id=customer_of(event),
        category=event.category, stream_id=event.stream_id, version=event.version, type=event.type,
        action=action_of(event.type), occurred_at=event.occurred_at, actor_kind=meta.actor.kind,
        actor_id=meta.actor.id, actor_name=meta.actor.name, ip=meta.actor.ip, reason=meta.reason,
        correlation_id=meta.correlation_id, causation_id=meta.causation_id, changes=changes,
        data=data, event=(raw if raw is not None else _json_of(event)) if keep else None,
    )
