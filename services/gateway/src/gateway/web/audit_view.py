"""What the Audit log tab shows: only the fields that changed, and event types by human names."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.contracts.events import REGISTRY

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-]+")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _leaves(path: str, old: Any, new: Any) -> list[tuple[str, str, str]]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):  # an address: only the parts that moved
        rows: list[tuple[str, str, str]] = []
        for key in sorted(set(old) | set(new)):
            rows += _leaves(f"{path}.{key}", old.get(key), new.get(key))
        return rows
    return [(path, _json(old), _json(new))]


def diff_rows(changes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, old, new) for each value that really changed; nested objects by their changed leaves."""
    rows: list[tuple[str, str, str]] = []
    for field, change in changes.items():
        if isinstance(change, dict) and ("old" in change or "new" in change):
            rows += _leaves(field, change.get("old"), change.get("new"))
    return rows


def human(event_type: str) -> str:
    """`CustomerStatusChanged` as `customer status changed`."""
    return _CAMEL.sub(" ", event_type).lower()


def known_types() -> list[str]:
    """Every event type, by its human name, for the filter's suggestions."""
    return sorted(human(t.__name__) for t in REGISTRY)


def event_types(text: str) -> tuple[list[str], list[str]]:
    """The type filter as typed (`customer updated, status changed`) as event names, and what is unknown."""
    by_key = {human(t.__name__).replace(" ", ""): t.__name__ for t in REGISTRY}
    found: list[str] = []
    unknown: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key = _SEPARATORS.sub("", part).lower()
        name = by_key.get(key) or by_key.get(f"customer{key}")
        if name is None:
            unknown.append(part)
        else:
            found.append(name)
    return found, unknown
