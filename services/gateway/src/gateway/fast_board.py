"""The board's query string read as `GET /v1/customers` reads it, for the fast path (ADR 0020).

The FastAPI route validates each parameter, splits the multi-valued ones (`split_values`) and
builds `ListCustomers` from them; every parameter's own check (`q` <= 200 characters, `limit`
1-1000, `cursor` <= 2000, a datetime for `created_*`, the statuses, currency and country
codes) is also a check of `ListCustomers`, so validating the same strings with that model alone
gives the same query. What it cannot tell apart it refuses (None): a repeated single-valued
parameter, a CSV export (`format=csv` or `Accept: text/csv`, a streamed answer), a `format`
other than `json`, any value the model rejects. FastAPI's route answers those.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import ValidationError
from shared.contracts.customer import ListCustomers

from gateway.entrypoints.board import split_values

MULTI = frozenset({"status", "tag", "currency", "country"})
SINGLE = frozenset({"q", "created_from", "created_to", "sort", "limit", "cursor", "format"})


def board_query(query_string: bytes, accept: str | None) -> bytes | None:
    """The `ListCustomers` JSON of a plain JSON board request, or None: FastAPI answers it."""
    multi: dict[str, list[str]] = {}
    single: dict[str, str] = {}
    # as Starlette's QueryParams: latin-1, then percent-decoding as UTF-8, blanks kept
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in MULTI:
            multi.setdefault(name, []).append(value)
        elif name in SINGLE:
            if name in single:
                return None  # which one wins is FastAPI's to say
            single[name] = value
    fmt = single.pop("format", None)
    if fmt is not None and fmt != "json":
        return None
    if fmt is None and accept is not None and "text/csv" in accept:
        return None
    fields: dict[str, object] = dict(single)
    for name, values in multi.items():
        fields[name] = split_values(values)
    try:
        return ListCustomers.model_validate(fields).model_dump_json().encode()
    except ValidationError:
        return None
