"""What the board asks the API beyond one page: the customers per status, and the whole
filtered result when its rows are grouped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.web.api_client import Api, ApiResult

if TYPE_CHECKING:
    from gateway.web.board_pages import BoardQuery

GROUP_MAX = 10_000  # rows the board groups at most (the first ones in the board's order)
FETCH_PAGE = 1_000  # the API's largest page
_API_COUNTS: list[bool] = []  # whether the board's answer carries `status_counts` (once seen)


def api_counts_per_status() -> bool:
    """Whether the customer service answers the counts per status (so no fallback is needed)."""
    return bool(_API_COUNTS) and _API_COUNTS[-1]


def note_api_counts(present: bool) -> None:
    """Remember whether the last board answer carried `status_counts`."""
    _API_COUNTS[:] = [present]


async def status_counts(api: Api, query: BoardQuery, statuses: tuple[str, ...]) -> dict[str, int] | None:
    """Customers per status for the current filter without its status part (None if the API fails).

    Only for a board answer without `status_counts`: one `limit=1` board request per status,
    side by side (the customer service keeps each count a few seconds per filter).
    """
    base = [(k, v) for k, v in query.filters() if k != "status"]
    replies = await asyncio.gather(*(
        api.get("/v1/customers", params=[*base, ("status", s), ("limit", "1")]) for s in statuses))
    if not all(r.ok and isinstance(r.body, dict) for r in replies):
        return None
    return {s: int(r.body.get("total") or 0) for s, r in zip(statuses, replies, strict=True)}


@dataclass
class Fetched:
    """The filtered result, in the board's order: the cards, the API's total, the last reply."""

    cards: list[dict[str, Any]]
    total: int
    reply: ApiResult
    status_counts: dict[str, int] | None = None  # the first page's, when the API answers them

    @property
    def capped(self) -> bool:
        """Whether more customers match than were fetched."""
        return self.total > len(self.cards)


async def fetch_all(api: Api, query: BoardQuery, most: int = GROUP_MAX) -> Fetched:
    """Every card the filter matches (at most `most`), walking the API's cursor pages."""
    cards: list[dict[str, Any]] = []
    cursor = ""
    counts: dict[str, int] | None = None
    while True:
        params = [*query.filters(), ("sort", query.sort), ("limit", str(min(FETCH_PAGE, most - len(cards))))]
        reply = await api.get("/v1/customers", params=[*params, *([("cursor", cursor)] if cursor else [])])
        if not reply.ok:
            return Fetched(cards, len(cards), reply)
        cards.extend(reply.body["items"])
        counts = counts or reply.body.get("status_counts")
        cursor = reply.body.get("next_cursor") or ""
        if not cursor or len(cards) >= most:
            return Fetched(cards, int(reply.body.get("total") or len(cards)), reply, counts)
