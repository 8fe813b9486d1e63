"""The customer board: search, filters, sort, paging, columns, tick boxes, row groups, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData, ImmutableMultiDict

from gateway.csv_export import write_rows
from gateway.web.api_client import ApiResult
from gateway.web.board_data import GROUP_MAX, api_counts_per_status, fetch_all, note_api_counts, status_counts
from gateway.web.board_groups import GROUPABLE, group_cards, grouped_page
from gateway.web.formatting import money, percent, utc
from gateway.web.forms import FormErrors, errors_from
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)

STATUSES = ("active", "inactive", "pending_approval", "penalty")
FILTER_FIELDS = ("q", "status", "tag", "currency", "country", "created_from", "created_to")
PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class Column:
    """A board column: its key, heading, the API's sort name (if sortable), shown by default."""

    key: str
    label: str
    sort: str | None = None
    default: bool = True
    numeric: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", "name"),
    Column("status", "Status", "status"),
    Column("currency", "Currency", "currency"),
    Column("country", "Country", "country"),
    Column("channels", "Channels", "channels", numeric=True),
    Column("cps", "CPS", "cps", numeric=True),
    Column("debit_limit", "Debit limit", "debit_limit", numeric=True),
    Column("tags", "Tags"),
    Column("created_at", "Created", "created_at"),
    Column("tax", "Tax %", "tax", default=False, numeric=True),
    Column("minimum_payment", "Min. payment", "minimum_payment", default=False, numeric=True),
    Column("portal_access", "Portal", "portal_access", default=False),
    Column("website", "Website", "website", default=False),
    Column("paypal_email", "PayPal e-mail", "paypal_email", default=False),
    Column("city", "City", default=False),
    Column("contacts", "Contacts", default=False, numeric=True),
    Column("updated_at", "Updated", "updated_at", default=False),
)


def cell(card: dict[str, Any], key: str) -> Any:
    """The value shown in one cell."""
    if key == "country":
        return (card.get("address") or {}).get("country") or ""
    if key == "city":
        return (card.get("address") or {}).get("city") or ""
    if key == "contacts":
        return len(card.get("contacts") or [])
    if key == "tags":
        return ", ".join(card.get("tags") or [])
    if key == "portal_access":
        return "yes" if card.get("portal_access") else "no"
    if key in ("created_at", "updated_at"):
        return utc(card.get(key))
    if key in ("debit_limit", "minimum_payment"):
        return money(card.get(key), card.get("currency"))
    if key == "tax":
        return percent(card.get(key))
    value = card.get(key)
    return "" if value is None else value


BACK_KEPT = 20  # pages « Previous can walk back through (the URL stays short)


@dataclass
class BoardQuery:
    """The board's state as the URL carries it."""

    q: str = ""
    status: tuple[str, ...] = ()
    tag: str = ""
    currency: str = ""
    country: str = ""
    created_from: str = ""
    created_to: str = ""
    sort: str = "name"
    limit: int = 50
    cursor: str = ""
    at: int = 0
    back: str = ""  # the cursors of the pages before, "~"-joined ("^" the first page), for « Previous
    group: str = ""  # a column of GROUPABLE: rows grouped (the whole filtered result), paged by `at`

    @classmethod
    def parse(cls, params: ImmutableMultiDict[str, Any]) -> BoardQuery:
        """From query parameters (or the filter fields of a posted selection form)."""
        def one(name: str) -> str:
            value = params.get(name)
            return value.strip() if isinstance(value, str) else ""

        limit = int(one("limit")) if one("limit").isdigit() else 50
        at = int(one("at")) if one("at").isdigit() else 0
        statuses = tuple(s for s in params.getlist("status") if isinstance(s, str) and s in STATUSES)
        return cls(q=one("q"), status=statuses, tag=one("tag"), currency=one("currency"),
                   country=one("country"), created_from=one("created_from"),
                   created_to=one("created_to"), sort=one("sort") or "name",
                   limit=max(1, min(limit, 1000)), cursor=one("cursor"), at=at, back=one("back"),
                   group=one("group") if one("group") in GROUPABLE else "")

    def filters(self) -> list[tuple[str, str]]:
        """The filter parameters for the API (and for links), without sort and paging."""
        out: list[tuple[str, str]] = []
        if self.q:
            out.append(("q", self.q))
        out.extend(("status", s) for s in self.status)
        for name in ("tag", "currency", "country"):
            if getattr(self, name):
                out.append((name, getattr(self, name)))
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            if value:
                out.append((name, value if "T" in value else f"{value}T00:00:00Z"))
        return out

    def filter_dict(self) -> dict[str, Any]:
        """The filter as the bulk and message APIs take it (`{"status": [...], ...}`)."""
        out: dict[str, Any] = {}
        if self.q:
            out["q"] = self.q
        if self.status:
            out["status"] = list(self.status)
        for name in ("tag", "currency", "country"):
            value = getattr(self, name)
            if value:
                out[name] = [v.strip() for v in value.split(",") if v.strip()]
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            if value:
                out[name] = value if "T" in value else f"{value}T00:00:00Z"
        return out

    def api_params(self) -> list[tuple[str, str]]:
        """Everything the API's board takes."""
        params = [*self.filters(), ("sort", self.sort), ("limit", str(self.limit))]
        if self.cursor:
            params.append(("cursor", self.cursor))
        return params

    def link(self, **changes: Any) -> str:
        """The board URL with some of its state changed (filters kept)."""
        state = {"group": self.group, "sort": self.sort, "limit": self.limit, "cursor": self.cursor,
                 "at": self.at, "back": self.back if "cursor" not in changes else "", **changes}
        params = [(k, v) for k, v in self.filters() if k not in ("created_from", "created_to")]
        params += [(k, getattr(self, k)) for k in ("created_from", "created_to") if getattr(self, k)]
        params += [(k, str(v)) for k, v in state.items() if v not in ("", None, 0) or k == "limit"]
        return f"{CONSOLE}/?{urlencode(params)}"

    def next_link(self, next_cursor: str, shown: int) -> str:
        """The next page, remembering this one for « Previous (the last BACK_KEPT pages)."""
        pages = [*(self.back.split("~") if self.back else []), self.cursor or "^"][-BACK_KEPT:]
        return self.link(cursor=next_cursor, at=self.at + shown, back="~".join(pages))

    def previous_link(self) -> str | None:
        """The page before this one (None on the first page)."""
        if not self.cursor:
            return None
        pages = self.back.split("~") if self.back else []
        before = pages.pop() if pages else "^"
        return self.link(cursor="" if before == "^" else before, at=max(0, self.at - self.limit),
                         back="~".join(pages))

    def status_link(self, status: str) -> str:
        """The board filtered to one status (the other filters and the grouping kept)."""
        return replace(self, status=(status,), cursor="", at=0, back="").link()

    def grouped_link(self, at: int) -> str:
        """Grouped rows page by offset (the grouping holds the whole filtered result)."""
        return self.link(cursor="", at=max(0, at), back="")

    def export_link(self) -> str:
        """The CSV export of everything the filter matches, in this order."""
        return f"{CONSOLE}/export.csv?{urlencode([*self.filters(), ('sort', self.sort)])}"

    def sort_link(self, column: Column) -> str:
        """Sort by a column; the same column again flips the direction."""
        assert column.sort is not None
        flipped = f"-{column.sort}" if self.sort == column.sort else column.sort
        return self.link(sort=flipped, cursor="", at=0)

    def sort_mark(self, column: Column) -> str:
        """An arrow on the sorted column."""
        if column.sort and self.sort == column.sort:
            return "▲"
        if column.sort and self.sort == f"-{column.sort}":
            return "▼"
        return ""

    @property
    def filtered(self) -> bool:
        """Whether any filter or search is on."""
        return bool(self.filters())


BOARD_FIELDS = ("q", "status", "tag", "currency", "country", "created_from", "created_to", "sort",
                "limit", "cursor")


@router.get("/")
async def board(request: Request, page: Annotated[Page, Depends(current_page)]) -> Response:
    """The board, one page of it (or one page of its grouped rows)."""
    query = BoardQuery.parse(request.query_params)
    counting = None if api_counts_per_status() else asyncio.ensure_future(
        status_counts(page.api, query, STATUSES))  # beside the page, while the API lacks them
    try:
        data, result, grouped = await _board_data(page, query)
    except BaseException:
        if counting is not None:
            counting.cancel()
        raise
    errors = errors_from(result, BOARD_FIELDS)
    counts = data.get("status_counts")  # the customer service's one grouped count, when it has it
    if result.ok:
        note_api_counts(counts is not None)
    if counting is not None:
        fallback = await counting
        counts = counts or fallback
    elif counts is None and result.ok:
        counts = await status_counts(page.api, query, STATUSES)
    return page.render("board.html", {
        "query": query, "columns": COLUMNS, "cell": cell, "statuses": STATUSES, "counts": counts,
        "groupable": GROUPABLE, "grouped": grouped,
        "items": data["items"], "total": data["total"], "next_cursor": data.get("next_cursor"),
        "page_sizes": PAGE_SIZES, "bulk_upload": await page.api.has_route("POST", "/v1/customers/bulk"),
    }, errors=errors, status=200 if result.ok or result.status >= 500 else result.status)


async def _board_data(page: Page, query: BoardQuery) -> tuple[dict[str, Any], ApiResult, dict[str, Any]]:
    """One page of the board, or one page of its grouped rows (with the groups)."""
    grouped: dict[str, Any] = {}
    if query.group:
        fetched = await fetch_all(page.api, query)
        result = fetched.reply
        groups = group_cards(fetched.cards, query.group)
        rows, row_count = grouped_page(groups, query.at, query.limit)
        data = {"items": [r.card for r in rows if r.card], "next_cursor": None, "total": fetched.total,
                "status_counts": fetched.status_counts}
        grouped = {"groups": groups, "rows": rows, "row_count": row_count, "capped": fetched.capped,
                   "fetched": len(fetched.cards), "group_max": GROUP_MAX}
    else:
        result = await page.api.get("/v1/customers", params=query.api_params())
        data = result.body if result.ok else {"items": [], "next_cursor": None, "total": 0}
    return data, result, grouped


@router.get("/export.csv")
async def export_csv(request: Request, page: Annotated[Page, Depends(current_page)]) -> Response:
    """Every customer the filter matches, as the API's CSV export."""
    query = BoardQuery.parse(request.query_params)
    result = await page.api.get("/v1/customers", params=[*query.filters(), ("sort", query.sort),
                                                        ("format", "csv")])
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    return _csv_response(result.content)


@router.post("/export.csv")
async def export_selected(page: Annotated[Page, Depends(current_page)]) -> Response:
    """The ticked customers (or all the filter matches) as CSV."""
    form = await page.form()
    query = BoardQuery.parse(form)
    result = await page.api.get("/v1/customers", params=[*query.filters(), ("sort", query.sort),
                                                        ("format", "csv")])
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    ids = set(selected_ids(form))
    if form.get("all_matching") == "1" or not ids:
        return _csv_response(result.content)
    return _csv_response(keep_rows(result.content, ids))


def keep_rows(content: bytes, ids: set[str]) -> bytes:
    """The CSV's header and the rows whose `id` is in ids."""
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    if not rows:
        return content
    out = io.StringIO()
    write_rows(out, [rows[0], *(row for row in rows[1:] if row and row[0] in ids)])
    return out.getvalue().encode()


def _csv_response(content: bytes) -> Response:
    return Response(content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="customers.csv"',
                             "Cache-Control": "no-store"})


def selected_ids(form: FormData) -> list[str]:
    """The ticked customers' ids (once each: a tag-grouped board shows a customer under each tag)."""
    return list(dict.fromkeys(v for v in form.getlist("ids") if isinstance(v, str) and v))


def selection_errors(form: FormData) -> FormErrors:
    """Nothing ticked and not 'all matching': say so."""
    errors = FormErrors()
    if not selected_ids(form) and form.get("all_matching") != "1":
        errors.add(None, "Tick at least one customer (or 'all matching the filter').")
    return errors
