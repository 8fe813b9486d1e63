"""Event types of the customer and settings aggregates: the typed models of the shared contracts."""

from __future__ import annotations

from shared.contracts.events.base import Event
from shared.contracts.events.customer import (
    CONTACT_EVENTS,
    CUSTOMER_CATEGORY,
    ERASURE_EVENTS,
    SETTINGS_CATEGORY,
    SETTINGS_STREAM,
    AuditSettingsChanged,
    CliApproved,
    CliRemoved,
    ContactAdded,
    ContactEmailVerified,
    ContactErased,
    ContactMobileVerified,
    ContactPasswordSet,
    ContactRemoved,
    ContactUpdated,
    CustomerCreated,
    CustomerDeleted,
    CustomerErased,
    CustomerEvent,
    CustomerStatusChanged,
    CustomerUpdated,
    NumberBlockAssigned,
    NumberBlockReleased,
    NumberRangeSet,
    SettingsEvent,
)
from shared.contracts.events.payments import PaymentRecorded, PaymentStatusChanged, PaypalSettingsChanged

__all__ = [
    "CONTACT_EVENTS", "CUSTOMER_CATEGORY", "ERASURE_EVENTS", "SETTINGS_CATEGORY", "SETTINGS_STREAM",
    "AuditSettingsChanged", "CliApproved", "CliRemoved", "ContactAdded", "ContactEmailVerified",
    "ContactErased", "ContactMobileVerified", "ContactPasswordSet", "ContactRemoved", "ContactUpdated",
    "CustomerCreated", "CustomerDeleted", "CustomerErased", "CustomerEvent", "CustomerStatusChanged",
    "CustomerUpdated", "Event", "NumberBlockAssigned", "NumberBlockReleased", "NumberRangeSet",
    "PaymentRecorded", "PaymentStatusChanged", "PaypalSettingsChanged", "SettingsEvent",
]
