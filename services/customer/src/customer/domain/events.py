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
CONTACT_ADDED = "ContactAdded"
CONTACT_UPDATED = "ContactUpdated"
CONTACT_REMOVED = "ContactRemoved"
CONTACT_PASSWORD_SET = "ContactPasswordSet"
CONTACT_EMAIL_VERIFIED = "ContactEmailVerified"
CONTACT_MOBILE_VERIFIED = "ContactMobileVerified"
CLI_APPROVED = "CliApproved"
CLI_REMOVED = "CliRemoved"
NUMBER_RANGE_SET = "NumberRangeSet"
NUMBER_BLOCK_ASSIGNED = "NumberBlockAssigned"
NUMBER_BLOCK_RELEASED = "NumberBlockReleased"
NUMBER_BLOCK_EVENTS = frozenset({NUMBER_BLOCK_ASSIGNED, NUMBER_BLOCK_RELEASED})
CONTACT_EVENTS = frozenset({
    CONTACT_ADDED, CONTACT_UPDATED, CONTACT_REMOVED, CONTACT_PASSWORD_SET,
    CONTACT_EMAIL_VERIFIED, CONTACT_MOBILE_VERIFIED, CLI_APPROVED, CLI_REMOVED,
})

# schema version of each event type as written today; older versions are upcast on read
SCHEMA_VERSIONS: dict[str, int] = {
    CUSTOMER_CREATED: 1,
    CUSTOMER_UPDATED: 1,
    CUSTOMER_STATUS_CHANGED: 1,
    CUSTOMER_DELETED: 1,
    AUDIT_SETTINGS_CHANGED: 1,
    NUMBER_RANGE_SET: 1,
    NUMBER_BLOCK_ASSIGNED: 1,
    NUMBER_BLOCK_RELEASED: 1,
    **{event_type: 1 for event_type in CONTACT_EVENTS},
}


@dataclass(frozen=True)
class Draft:
    """An event decided but not yet stored: its type and data (JSON-ready)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


def upcast(event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Bring old event data up to the current schema (none are old yet)."""
    return data
