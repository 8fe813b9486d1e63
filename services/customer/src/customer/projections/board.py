"""The board's read model: the row of a customer, and the board query over the rows."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from shared.contracts.customer import SORTABLE, ListCustomers
from shared.errors import ErrorCode, ErrorDetail, ServiceError

from customer.domain.state import CustomerState
from customer.projections.board_totals import STATUSES, BoardTotals, StatusCounts, total_of

__all__ = ["BoardTotals", "list_customers", "row", "rows_json", "search_text"]

ROW_COLUMNS = (
    "id", "name", "status", "currency", "country", "tags", "website", "paypal_email",
    "channels", "cps", "debit_limit", "tax", "minimum_payment", "portal_access",
    "penalty_until", "deleted", "version", "created_at", "updated_at", "search", "card",
)

_TYPES = (
    "uuid", "text", "text", "text", "text", "text[]", "text", "text", "int", "numeric",
    "numeric", "numeric", "numeric", "bool", "timestamptz", "bool", "int", "timestamptz",
    "timestamptz", "text", "text",
)
# the rows travel as one JSON document (see shared/eventstore.py for why)
UPSERT_SQL = (
    f"INSERT INTO customers ({', '.join(ROW_COLUMNS)}) SELECT {', '.join(ROW_COLUMNS)}"
    " FROM jsonb_to_recordset({}::jsonb) AS x("
    + ", ".join(f"{c} {t}" for c, t in zip(ROW_COLUMNS, _TYPES, strict=True))
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in ROW_COLUMNS if c != "id")
)


WORD = re.compile(r"\w+")
# a board query matching at most this many customers sorts its matches instead of walking
# the sort order (see list_customers)
FILTER_FIRST_MAX = 1_000


def search_text(state: CustomerState) -> str:
    """What free-text search looks at: name, website, tags, contact names and e-mails.

    Each value is kept whole and also split into words, so `acme` finds `ops@acme.example`.
    """
    f = state.fields
    parts = [f["name"], f.get("website") or "", " ".join(f["tags"])]
    for contact in state.contacts:
        parts.extend([str(contact.get("name") or ""), str(contact.get("email") or "")])
    text = " ".join(p for p in parts if p).lower()
    return f"{text} {' '.join(WORD.findall(text))}"


def search_query(q: str) -> str | None:
    """The tsquery of a search box: every word as a prefix, all required."""
    words = WORD.findall(q.lower())
    return " & ".join(f"{w}:*" for w in words) or None


def row(state: CustomerState, card_json: str) -> dict[str, Any]:
    """The read-model row of one customer (JSON-ready)."""
    f = state.fields
    return {
        "id": state.id, "name": f["name"], "status": f["status"], "currency": f["currency"],
        "country": (f.get("address") or {}).get("country"), "tags": f["tags"],
        "website": f.get("website"), "paypal_email": f.get("paypal_email"),
        "channels": f["channels"], "cps": f["cps"], "debit_limit": f["debit_limit"],
        "tax": f["tax"], "minimum_payment": f["minimum_payment"],
        "portal_access": f["portal_access"], "penalty_until": f.get("penalty_until"),
        "deleted": state.deleted, "version": state.version, "created_at": state.created_at,
        "updated_at": state.updated_at, "search": search_text(state), "card": card_json,
    }


def rows_json(rows: list[dict[str, Any]]) -> str:
    """The rows as the one JSON argument of UPSERT_SQL."""
    return orjson.dumps(rows).decode()


# sort key -> (SQL expression, kind used to decode the cursor value)
SORT_EXPR: dict[str, tuple[str, str]] = {
    "name": ("lower(name)", "text"),
    "status": ("status", "text"),
    "currency": ("currency", "text"),
    "country": ("coalesce(country, '')", "text"),
    "website": ("coalesce(lower(website), '')", "text"),
    "paypal_email": ("coalesce(lower(paypal_email), '')", "text"),
    "created_at": ("created_at", "time"),
    "updated_at": ("updated_at", "time"),
    "channels": ("channels", "int"),
    "cps": ("cps", "numeric"),
    "debit_limit": ("debit_limit", "numeric"),
    "tax": ("tax", "numeric"),
    "minimum_payment": ("minimum_payment", "numeric"),
    "portal_access": ("portal_access", "bool"),
}
assert set(SORT_EXPR) == set(SORTABLE)
# sort key -> the same order in customer_tags (its rows are live customers only)
TAG_ORDER = {"name": "t.name_key", "created_at": "t.created"}


def _bad(field: str, message: str) -> ServiceError:
    return ServiceError(ErrorCode.VALIDATION, message, [ErrorDetail(field=field, message=message)])


def _encode_cursor(sort: str, value: Any, last_id: str) -> str:
    raw = json.dumps([sort, value, last_id], default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, kind: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, last_id = json.loads(raw)
        if cursor_sort != sort:
            raise ValueError("sort changed")
        parsers: dict[str, Callable[[Any], Any]] = {
            "text": str, "int": int, "numeric": Decimal, "bool": bool,
            "time": datetime.fromisoformat,
        }
        decoded = parsers[kind](value)
        return decoded, str(last_id)
    except Exception:
        raise _bad("cursor", "the cursor is not valid for this sort; start again without it") from None


# The walks' planner settings. enable_sort = off: walk an index in the page's order, never sort
# every match. random_page_cost = 1.1 (the default 4.0 prices a disk seek): right after a burst
# of writes, before autovacuum has marked the new pages all-visible, an index-only walk is priced
# with a seek per row on those pages, and the planner walked the name index in heap order instead,
# filtering out the new rows (a page of DE + EUR after 10k creates without a country: 10k rows
# filtered, 18k buffers, 5-20 ms -> 0.2 ms from customers_board_country; docs/performance.md,
# "Dial permission with CDRs, and the board after writes, third round"). The board's pages are
# in memory: a random read costs about a sequential one.
WALK_SETTINGS = {"enable_sort": "off", "random_page_cost": "1.1"}


async def open_walk_pool(dsn: str, schema: str, max_size: int = 4) -> asyncpg.Pool:
    """Connections that plan for walks (WALK_SETTINGS), for the board's pages (see list_customers)."""
    # max_inactive_connection_lifetime=0: no timer set on every release and cancelled on every
    # acquire (asyncpg's default closes a connection idle for 300 s; these few are kept open)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, reset=_no_reset, max_inactive_connection_lifetime=0,
        server_settings={"search_path": schema, **WALK_SETTINGS},
    )
    assert pool is not None
    return pool


async def _no_reset(_: asyncpg.Connection) -> None:
    """Keep the session as it is on release: WALK_SETTINGS are the point of these connections."""


async def list_customers(
    pool: asyncpg.Pool, query: ListCustomers, totals: BoardTotals | None = None,
    walk_pool: asyncpg.Pool | None = None,
) -> bytes:
    """One page of the board as JSON, with the count of matching customers, and per status."""
    descending = query.sort.startswith("-")
    sort = query.sort.lstrip("-")
    if sort not in SORT_EXPR:
        raise _bad("sort", f"cannot sort by '{sort}'; sortable: {', '.join(SORTABLE)}")
    expr, kind = SORT_EXPR[sort]
    where = ["NOT deleted"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.q and (tsquery := search_query(query.q)):
        where.append(f"search_vector @@ to_tsquery('simple', {arg(tsquery)})")
    if query.tag:
        where.append(f"tags && {arg(query.tag)}::text[]")
    def one_of(column: str, values: list[str]) -> str:
        # one value as `=`: the planner then knows the column is constant and can walk an index
        # that starts with it in the sort's order (`= ANY` of one value hides that)
        if len(values) == 1:
            return f"{column} = {arg(values[0])}"
        return f"{column} = ANY({arg(values)}::text[])"

    if query.currency:
        where.append(one_of("currency", query.currency))
    if query.country:
        where.append(one_of("country", query.country))
    if query.created_from:
        where.append(f"created_at >= {arg(query.created_from)}")
    if query.created_to:
        where.append(f"created_at < {arg(query.created_to)}")
    but_status, but_status_args = " AND ".join(where), list(args)

    # a search is driven by its GIN index (not partial). `NOT deleted` is tested after a fence
    # (`OFFSET 0`), or the planner may AND that index with a whole scan of a partial index for
    # `NOT deleted` (customers_filters: 130k entries, 5-10 ms a page after a burst of writes,
    # docs/performance.md "Commands: PostgreSQL, fourth round")
    fenced = bool(query.q and search_query(query.q))
    live_but_status = " AND ".join(where[1:])  # the search and the filters, without `NOT deleted`

    async def count() -> StatusCounts:
        sql = f"SELECT status, count(*) AS n FROM customers WHERE {but_status} GROUP BY status"
        if fenced:
            sql = (f"SELECT status, count(*) AS n FROM (SELECT status, deleted FROM customers"
                   f" WHERE {live_but_status} OFFSET 0) m WHERE NOT m.deleted GROUP BY status")
        rows = await pool.fetch(sql, *but_status_args)
        return {r["status"]: int(r["n"]) for r in rows}

    counts = await (totals.counts(BoardTotals.key(query), count) if totals is not None else count())
    total = total_of(counts, query.status)
    if query.status:
        where.append(one_of("status", list(query.status)))
    filtered = len(where) > 1
    page_where = " AND ".join(where)
    order = "DESC" if descending else "ASC"
    # one tag, in an order customer_tags keeps: walk that tag's rows (migration 0014)
    by_tag = TAG_ORDER.get(sort) if query.tag and len(query.tag) == 1 and total > FILTER_FIRST_MAX else None
    source, key, row_id = "customers", expr, "id"
    if by_tag is not None:
        tag = arg(query.tag[0])
        source = f"customer_tags t JOIN customers ON customers.id = t.customer_id AND t.tag = {tag}"
        key, row_id = by_tag, "t.customer_id"
    if query.cursor:
        value, last_id = _decode_cursor(query.cursor, query.sort, kind)
        op = "<" if descending else ">"
        where.append(f"({key}, {row_id}) {op} ({arg(value)}, {arg(last_id)}::uuid)")
        page_where = " AND ".join(where)
    limit = arg(query.limit + 1)
    keys = f"SELECT {key} AS sort_value, {row_id} AS id FROM {source} WHERE {page_where}"
    # the page's keys first (from an index alone where one covers the sort and the filters),
    # then the cards of those rows only: a card is ~0.9 KB of the row
    cards = (" SELECT c.card, page.sort_value, page.id FROM page JOIN customers c ON c.id = page.id"
             f" ORDER BY page.sort_value {order}, page.id {order}")
    if not total:
        rows = []
    elif total <= FILTER_FIRST_MAX:
        # few matches: take them all through the filters' indexes, then sort them. Walking the
        # sort's index and testing each row reads most of the table when matches are rare (a
        # search word: 15-20 ms over 100k customers -> under 1 ms); `OFFSET 0` keeps the
        # planner from merging the two steps back into that walk
        if fenced:  # `NOT deleted` (where[0]) after the fence, as in count above
            live = " AND ".join(where[1:])
            keys = f"SELECT {key} AS sort_value, {row_id} AS id, deleted FROM {source} WHERE {live}"
        rows = await pool.fetch(
            f"WITH page AS MATERIALIZED (SELECT sort_value, id FROM ({keys} OFFSET 0) matches"
            f"{' WHERE NOT matches.deleted' if fenced else ''}"
            f" ORDER BY sort_value {order}, id {order} LIMIT {limit}){cards}", *args)
    else:
        # many matches: walk the sort's index (where there is one) until the page is full. The
        # planner, misled by statistics older than a burst of writes, sorted all 5,000-8,000
        # matches of a tag or a country instead (13-17 ms over 100k customers -> 0.3 ms): walks
        # run with enable_sort = off, on the walk pool's connections (set once per connection;
        # BEGIN, SET LOCAL and COMMIT around each page were a quarter of the service's CPU)
        walk = f"{keys} ORDER BY {key} {order}, {row_id} {order} LIMIT {limit}"
        sql = (f"WITH page AS MATERIALIZED ({walk}){cards}" if filtered  # nothing to skip otherwise:
               else walk.replace("SELECT ", "SELECT card, ", 1))  # cards read in the walk itself
        if walk_pool is not None:
            rows = await walk_pool.fetch(sql, *args)
        else:
            async with pool.acquire() as conn, conn.transaction():
                for setting, value in WALK_SETTINGS.items():
                    await conn.execute(f"SET LOCAL {setting} = {value}")
                rows = await conn.fetch(sql, *args)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = (
        _encode_cursor(query.sort, rows[-1]["sort_value"], str(rows[-1]["id"])) if more else None
    )
    # the cards are stored as the JSON the API answers: join them, don't re-encode them
    items = ",".join([r["card"] for r in rows])
    per_status = orjson.dumps({s: counts.get(s, 0) for s in STATUSES})
    after = b"null" if next_cursor is None else orjson.dumps(next_cursor)
    return b"".join((b'{"items":[', items.encode(), b'],"next_cursor":', after, b',"total":',
                     str(total).encode(), b',"status_counts":', per_status, b"}"))
