"""Placeholders rendered safely: `{{ name }}` looked up in a fixed dict of strings, nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")

# what an operator's broadcast may use (values come from the customer card and the contact)
BROADCAST_FIELDS = (
    "customer.id",
    "customer.name",
    "contact.id",
    "contact.name",
    "contact.email",
    "contact.mobile",
    "contact.phone",
    "contact.contact_type",
)


class UnknownPlaceholder(ValueError):
    """A template names a value that is not offered."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"unknown placeholder(s): {', '.join('{{' + n + '}}' for n in names)}")
        self.names = names


def placeholders(template: str) -> list[str]:
    """The names a template uses, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def check(template: str, allowed: Iterable[str]) -> None:
    """Raise UnknownPlaceholder when the template uses a name outside `allowed`."""
    offered = set(allowed)
    unknown = [name for name in placeholders(template) if name not in offered]
    if unknown:
        raise UnknownPlaceholder(unknown)


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute each placeholder by its value (text only: no expression is ever evaluated)."""
    missing = [name for name in placeholders(template) if name not in values]
    if missing:
        raise UnknownPlaceholder(missing)
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def header_safe(text: str) -> str:
    """One line, for a header such as Subject (no header injection through values)."""
    return " ".join(text.split())
