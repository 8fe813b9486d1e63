"""CSV export of the board: every matching card, one flat row each, streamed page by page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

ADDRESS = ("line1", "line2", "city", "region", "postcode", "country")
VERIFICATION = ("email_required", "mobile_required", "approved_clis_only")
COLUMNS: tuple[str, ...] = (
    "id", "name", "status", "penalty_until", "currency", "debit_limit", "minimum_payment", "tax",
    "portal_access", "channels", "cps", "paypal_email", "website",
    *(f"address.{k}" for k in ADDRESS), "tags",
    *(f"verification.{k}" for k in VERIFICATION), "approved_clis",
    "notes", "config_toml", "version", "created_at", "updated_at",
)
LIST_SEPARATOR = ";"

FetchPage = Callable[[str | None], Awaitable[dict[str, Any]]]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def flatten(card: dict[str, Any]) -> list[str]:
    """One card as a row in COLUMNS order (nested objects as `address.city` etc.)."""
    row = []
    for column in COLUMNS:
        group, _, key = column.partition(".")
        value = (card.get(group) or {}).get(key) if key else card.get(column)
        row.append(_cell(value))
    return row


def render(rows: Iterable[list[str]]) -> str:
    """Rows as CSV text (RFC 4180 quoting, CRLF line ends)."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


async def stream_board(first: dict[str, Any], fetch: FetchPage) -> AsyncIterator[str]:
    """The header, then each page's rows, fetching the next page only when needed."""
    yield render([list(COLUMNS)])
    page = first
    while True:
        yield render(flatten(card) for card in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return
        page = await fetch(cursor)
