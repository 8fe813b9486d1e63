"""CSV export of the board: every matching card, one flat row each, streamed page by page.

Every CSV the gateway writes goes through `safe_cell`: a spreadsheet opening the file must
never run a cell as a formula (CSV injection, issue 14).
"""

from __future__ import annotations

import csv
import io
import re
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
# what makes a spreadsheet read a cell as a formula (or split it into one)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
NEUTRALISER = "'"


def safe_cell(text: str) -> str:
    """The cell as text a spreadsheet shows and never evaluates: `=1+1` -> `'=1+1`.

    Plain numbers (`-12.5`, `+4930...`) stay as they are: they cannot hold a formula.
    """
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.match(text):
        return NEUTRALISER + text
    if text.startswith(NEUTRALISER):  # kept apart from a neutralised cell, so uploads read it back
        return NEUTRALISER + text
    return text


def unneutralise(text: str) -> str:
    """The inverse on upload: an exported `'=1+1` reads back as `=1+1`."""
    if text.startswith(NEUTRALISER) and text[1:].startswith((*FORMULA_START, NEUTRALISER)):
        return text[1:]
    return text


def write_rows(out: io.StringIO, rows: Iterable[Iterable[str]]) -> None:
    """Rows as CSV into out, every cell made safe (the one CSV writer of the gateway)."""
    csv.writer(out).writerows([safe_cell(cell) for cell in row] for row in rows)


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
    write_rows(out, rows)
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
