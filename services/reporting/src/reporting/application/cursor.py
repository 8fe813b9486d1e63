"""Opaque keyset cursors: (timestamp, id) pairs, base64 JSON."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from shared.errors import ErrorCode, ErrorDetail, ServiceError


def encode(moment: datetime, key: str) -> str:
    """A cursor pointing after (moment, key)."""
    raw = json.dumps([moment.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    """(moment, key) of a cursor; a validation error when it was not made here."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, key = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(moment), str(key)
    except (ValueError, TypeError) as exc:
        raise ServiceError(
            ErrorCode.VALIDATION, "the cursor is not valid",
            [ErrorDetail(field="cursor", message="not a cursor this API gave", type="cursor")],
        ) from exc
