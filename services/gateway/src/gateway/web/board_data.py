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


async def status_counts(api: Api, query: BoardQuery, statuses: tuple[str, ...]) -> dict[str, int] | None:
    """Customers per status for the current filter without its status part (None if the API fails).

    One `limit=1` board request per status, side by side: each total is the customer service's
    one count, which it keeps for a few seconds per filter (so a page's reload costs no count).
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

    @property
    def capped(self) -> bool:
        """Whether more customers match than were fetched."""
        return self.total > len(self.cards)


async def fetch_all(api: Api, query: BoardQuery, most: int = GROUP_MAX) -> Fetched:
    """Every card the filter matches (at most `most`), walking the API's cursor pages."""
    cards: list[dict[str, Any]] = []
    cursor = ""
    while True:
        params = [*query.filters(), ("sort", query.sort), ("limit", str(min(FETCH_PAGE, most - len(cards))))]
        reply = await api.get("/v1/customers", params=[*params, *([("cursor", cursor)] if cursor else [])])
        if not reply.ok:
            return Fetched(cards, len(cards), reply)
        cards.extend(reply.body["items"])
        cursor = reply.body.get("next_cursor") or ""
        if not cursor or len(cards) >= most:
            return Fetched(cards, int(reply.body.get("total") or len(cards)), reply)
