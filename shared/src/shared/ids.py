"""Identifiers: time-ordered UUIDv7 for everything the server assigns."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    """Return a new time-ordered UUID (version 7)."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def new_id_str() -> str:
    """A new time-ordered UUID (version 7) as text, without making a `uuid.UUID` (the command path)."""
    return str(uuid_utils.uuid7())
