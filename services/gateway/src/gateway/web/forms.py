"""Forms: the API's errors placed beside the fields they name, and form values turned into JSON."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from gateway.web.api_client import ApiResult

# error codes whose answer names no field, but that belong to one
CODE_FIELDS = {
    "name_taken": "name",
    "email_taken": "email",
    "currency_immutable": "currency",
    "reason_required": "reason",
    "password_in_notes": "public_notes",
}
# the API's request wrappers (`changes.tax` in a PATCH answered by the service is `tax` here)
WRAPPERS = ("changes.", "customer.", "contact.", "set.", "body.")
TOML_POSITION = re.compile(r"at line (\d+), column (\d+)")
FORM_KEY_FIELD = "form_key"  # a hidden input: one idempotency key per rendered form
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass
class FormErrors:
    """Messages per form field, and the ones that belong to the whole form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> None:
        """One message for a field (None: the whole form)."""
        if name is None:
            self.general.append(message)
        else:
            self.fields.setdefault(name, []).append(message)

    def get(self, name: str) -> list[str]:
        """The messages of one field."""
        return self.fields.get(name, [])


def _field_name(raw: str, known: frozenset[str]) -> str | None:
    name = raw
    for prefix in WRAPPERS:
        if name.startswith(prefix) and name.removeprefix(prefix) != "":
            candidate = name.removeprefix(prefix)
            if candidate in known or candidate.split(".")[0] in known:
                name = candidate
    if name in known:
        return name
    # `tags.3` (one bad tag) belongs to the `tags` field
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in known:
            return head
    return None


def errors_from(result: ApiResult, known: Iterable[str] = ()) -> FormErrors:
    """The API's error answer as form errors: each detail beside its field when the form has it."""
    known_set = frozenset(known)
    errors = FormErrors()
    if result.ok:
        return errors
    details = result.error.get("details") or []
    placed = False
    for detail in details:
        raw = detail.get("field")
        name = _field_name(raw, known_set) if raw else None
        message = str(detail.get("message", ""))
        if name is None and raw:
            message = f"{raw}: {message}"
        errors.add(name, message)
        placed = True
    code = result.code or ""
    if not placed:
        target = CODE_FIELDS.get(code)
        errors.add(target if target in known_set else None, result.message or f"error {result.status}")
    elif code not in ("validation_error", *CODE_FIELDS):  # those details already say it
        errors.general.insert(0, result.message)
    if result.status == 412:
        errors.general.append("Someone changed this record after you opened it: reload and try again.")
    return errors


def toml_error_line(errors: FormErrors, name: str = "config_toml") -> tuple[int, int] | None:
    """The (line, column) of a TOML parse error among a field's messages."""
    for message in errors.get(name):
        found = TOML_POSITION.search(message)
        if found:
            return int(found.group(1)), int(found.group(2))
    return None


def new_form_key() -> str:
    """A fresh key for one rendered form (a template global, see the `form_key` macro)."""
    return secrets.token_urlsafe(16)


def idempotency_headers(form: FormData, *sent: str) -> dict[str, str]:
    """`Idempotency-Key` from the form's key and the values it sends.

    A double submit or a resubmit of the same rendered form with the same values is one command;
    values edited in that form (after a lost reply) make another. No key, or a malformed one: none.
    """
    key = form.get(FORM_KEY_FIELD)
    if not isinstance(key, str) or not FORM_KEY.fullmatch(key):
        return {}
    if sent:
        key += "." + hashlib.sha256("\x1f".join(sent).encode()).hexdigest()[:16]
    return {"Idempotency-Key": key}


def text(form: FormData, name: str) -> str:
    """A text field, stripped ("" when absent)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def text_or_none(form: FormData, name: str) -> str | None:
    """A text field; blank is None."""
    return text(form, name) or None


def checked(form: FormData, name: str) -> bool:
    """A checkbox."""
    return form.get(name) in ("on", "true", "1", "yes")


def split_list(value: str) -> list[str]:
    """`a, b,c` or one per line -> ["a", "b", "c"]."""
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def many(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (tick boxes), blanks dropped."""
    return [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The entries of `after` that differ from `before` (compared as strings for decimals)."""
    changes: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            if any(_differs(old.get(k), v) for k, v in value.items()):
                changes[key] = value
        elif _differs(old, value):
            changes[key] = value
    return changes


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, list) and isinstance(new, list):
        return sorted(map(str, old)) != sorted(map(str, new))
    if old is None or new is None:
        return bool(old != new)
    if isinstance(old, bool) or isinstance(new, bool):
        return bool(old) != bool(new)
    return _canonical(old) != _canonical(new)


def _canonical(value: Any) -> str:
    text_value = str(value)
    if re.fullmatch(r"-?\d+(\.\d+)?", text_value) and "." in text_value:
        text_value = text_value.rstrip("0").rstrip(".")
    return text_value
