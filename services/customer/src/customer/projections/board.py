"""The board's read model: the row of a customer, and the board query over the rows."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from shared.contracts.customer import SORTABLE, ListCustomers
from shared.errors import ErrorCode, ErrorDetail, ServiceError

from customer.domain.state import CustomerState

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


class BoardTotals:
    """Recent `total`s of the board by filter: counting 100k customers costs 5-30 ms (30 until
    autovacuum has marked the pages all-visible again), a page ~0.3 ms.

    An entry lives `ttl_s`, and every commit of this process clears them all; so a total is
    exact but for what other processes (another customer replica, a bulk upload's own
    transaction) committed in the last `ttl_s`.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 1_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._totals: dict[tuple[Any, ...], tuple[int, float]] = {}

    @staticmethod
    def key(query: ListCustomers) -> tuple[Any, ...]:
        """What a total depends on: the filters (not the sort, the page or its size)."""
        def sorted_or_none(values: list[Any] | None) -> tuple[Any, ...] | None:
            return tuple(sorted(values)) if values else None

        return (query.q or None, sorted_or_none(query.status), sorted_or_none(query.tag),
                sorted_or_none(query.currency), sorted_or_none(query.country),
                query.created_from, query.created_to)

    def get(self, key: tuple[Any, ...]) -> int | None:
        """A total counted less than `ttl_s` ago and since this process's last commit."""
        found = self._totals.get(key)
        if found is None or time.monotonic() - found[1] > self.ttl_s:
            return None
        return found[0]

    def put(self, key: tuple[Any, ...], total: int) -> None:
        """Remember a total just counted."""
        if len(self._totals) >= self.max_entries:
            self._totals.clear()
        self._totals[key] = (total, time.monotonic())

    def clear(self) -> None:
        """Forget every total (this process committed a change)."""
        self._totals.clear()


async def list_customers(
    pool: asyncpg.Pool, query: ListCustomers, totals: BoardTotals | None = None,
) -> bytes:
    """One page of the board as JSON, with the total count of matching customers."""
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
    if query.status:
        where.append(f"status = ANY({arg(query.status)}::text[])")
    if query.tag:
        where.append(f"tags && {arg(query.tag)}::text[]")
    if query.currency:
        where.append(f"currency = ANY({arg(query.currency)}::text[])")
    if query.country:
        where.append(f"country = ANY({arg(query.country)}::text[])")
    if query.created_from:
        where.append(f"created_at >= {arg(query.created_from)}")
    if query.created_to:
        where.append(f"created_at < {arg(query.created_to)}")
    filters = " AND ".join(where)
    key = BoardTotals.key(query) if totals is not None else ()
    total = totals.get(key) if totals is not None else None
    if total is None:
        total = int(await pool.fetchval(f"SELECT count(*) FROM customers WHERE {filters}", *args))
        if totals is not None:
            totals.put(key, total)
    page_where = filters
    if query.cursor:
        value, last_id = _decode_cursor(query.cursor, query.sort, kind)
        op = "<" if descending else ">"
        page_where += f" AND ({expr}, id) {op} ({arg(value)}, {arg(last_id)}::uuid)"
    order = "DESC" if descending else "ASC"
    page = f"SELECT card, {expr} AS sort_value, id FROM customers WHERE {page_where}"
    limit = arg(query.limit + 1)
    if not total:
        rows = []
    elif total <= FILTER_FIRST_MAX:
        # few matches: take them all through the filters' indexes, then sort them. Walking the
        # sort's index and testing each row reads most of the table when matches are rare (a
        # search word: 15-20 ms over 100k customers -> under 1 ms); `OFFSET 0` keeps the
        # planner from merging the two steps back into that walk
        rows = await pool.fetch(
            f"SELECT card, sort_value, id FROM ({page} OFFSET 0) matches"
            f" ORDER BY sort_value {order}, id {order} LIMIT {limit}", *args)
    else:
        # many matches: walk the sort's index (where there is one) until the page is full. The
        # planner, misled by statistics older than a burst of writes, sorted all 5,000-8,000
        # matches of a tag or a country instead (13-17 ms over 100k customers -> 0.3 ms)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_sort = off")
            rows = await conn.fetch(f"{page} ORDER BY {expr} {order}, id {order} LIMIT {limit}", *args)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = (
        _encode_cursor(query.sort, rows[-1]["sort_value"], str(rows[-1]["id"])) if more else None
    )
    # the cards are stored as the JSON the API answers: join them, don't re-encode them
    items = ",".join(r["card"] for r in rows)
    return f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)},"total":{total}}}'.encode()
