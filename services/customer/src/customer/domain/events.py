"""Event types of the customer and settings aggregates (facts, past tense)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CUSTOMER_CATEGORY = "customer"
SETTINGS_CATEGORY = "settings"
SETTINGS_STREAM = "global"

CUSTOMER_CREATED = "CustomerCreated"
CUSTOMER_UPDATED = "CustomerUpdated"
CUSTOMER_STATUS_CHANGED = "CustomerStatusChanged"
CUSTOMER_DELETED = "CustomerDeleted"
AUDIT_SETTINGS_CHANGED = "AuditSettingsChanged"

# schema version of each event type as written today; older versions are upcast on read
SCHEMA_VERSIONS: dict[str, int] = {
    CUSTOMER_CREATED: 1,
    CUSTOMER_UPDATED: 1,
    CUSTOMER_STATUS_CHANGED: 1,
    CUSTOMER_DELETED: 1,
    AUDIT_SETTINGS_CHANGED: 1,
}


@dataclass(frozen=True)
class Draft:
    """An event decided but not yet stored: its type and data (JSON-ready)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring old event data up to the current schema (none are old yet)."""
    return data
