"""Reading a bulk upload: CSV or JSON from a spooled body, one row at a time (bounded memory).

CSV columns are the card's fields; nested ones are dotted (`address.city`,
`verification.email_required`), tags are `;`-separated, exactly as the board's CSV export
writes them, so an export can be uploaded back (its read-only columns are ignored). An
empty cell means "not given" (the field's default). JSON is an array of card objects (or
NDJSON, one object per line); numbers keep their exact spelling, so `1e3` is refused by the
same field rules as in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from shared.contracts.base import nul_at
from shared.contracts.bulk import MAX_UPLOAD_ROWS
from shared.errors import ErrorCode, ErrorDetail

from gateway.csv_export import ADDRESS, LIST_SEPARATOR, VERIFICATION, unneutralise
from gateway.errors import ApiError

FLAT_COLUMNS = frozenset(
    {
        "name",
        "paypal_email",
        "website",
        "status",
        "penalty_until",
        "debit_limit",
        "minimum_payment",
        "tax",
        "currency",
        "portal_access",
        "channels",
        "cps",
        "tags",
        "config_toml",
        "notes",
    }
)
NESTED_COLUMNS = frozenset({f"address.{k}" for k in ADDRESS} | {f"verification.{k}" for k in VERIFICATION})
# what the export writes but a new customer cannot be given: skipped on upload
IGNORED_COLUMNS = frozenset({"id", "approved_clis", "version", "created_at", "updated_at", "deleted"})
REQUIRED_COLUMNS = ("name", "currency")
JSON_BUFFER = 64 * 1024


@dataclass
class Row:
    """One record: its 1-based number, the CSV line it starts on, its fields, reading problems."""

    row: int
    line: int | None
    data: dict[str, Any]
    errors: list[ErrorDetail] = field(default_factory=list)

    def staged(self) -> dict[str, Any]:
        """The row as the customer service's `StagedRow`."""
        return {
            "row": self.row,
            "line": self.line,
            "data": self.data,
            "errors": [e.model_dump() for e in self.errors],
        }


def _header_error(message: str, column: str | None = None) -> ApiError:
    return ApiError(
        ErrorCode.VALIDATION, message, [ErrorDetail(field=column, message=message, type="csv_header")]
    )


def check_header(header: list[str]) -> list[str]:
    """The header's column names (trimmed); unknown, repeated or missing required ones are refused."""
    columns = [h.strip() for h in header]
    unknown = [c for c in columns if c not in FLAT_COLUMNS | NESTED_COLUMNS | IGNORED_COLUMNS]
    if unknown:
        raise _header_error(
            f"unknown column(s): {', '.join(repr(c) for c in unknown)}; columns are the card's"
            " fields, nested ones dotted (address.city), tags separated by ';'",
            unknown[0],
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise _header_error(f"column(s) given twice: {', '.join(repeated)}", repeated[0])
    for required in REQUIRED_COLUMNS:
        if required not in columns:
            raise _header_error(f"the header needs a '{required}' column", required)
    return columns


def row_from_cells(columns: list[str], cells: list[str]) -> dict[str, Any]:
    """A card object from one CSV record (empty cells left out)."""
    data: dict[str, Any] = {}
    for column, raw in zip(columns, cells, strict=False):
        cell = unneutralise(raw)  # an export's `'=x` reads back as `=x`
        if cell == "" or column in IGNORED_COLUMNS:
            continue
        if column == "tags":
            data["tags"] = [t.strip() for t in cell.split(LIST_SEPARATOR) if t.strip()]
        elif "." in column:
            group, key = column.split(".", 1)
            data.setdefault(group, {})[key] = cell
        else:
            data[column] = cell
    return data


def _too_many(row: int) -> ApiError:
    return ApiError(
        ErrorCode.VALIDATION, f"an upload holds at most {MAX_UPLOAD_ROWS} rows; row {row} is one too many"
    )


def read_csv(text: IO[str]) -> Iterator[Row]:
    """The rows of a CSV upload (header first; blank lines skipped)."""
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _header_error("the CSV is empty: it needs a header row and at least one row")
        columns = check_header(header)
        number, line = 0, reader.line_num + 1
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not cells or cells == [""]:
                continue
            number += 1
            if number > MAX_UPLOAD_ROWS:
                raise _too_many(number)
            errors = []
            if len(cells) > len(columns):
                errors.append(
                    ErrorDetail(
                        field=None,
                        type="csv_row",
                        message=f"the row has {len(cells)} cells but the header has {len(columns)} columns",
                    )
                )
            yield Row(number, start, row_from_cells(columns, cells), errors)
    except csv.Error as exc:
        raise ApiError(
            ErrorCode.VALIDATION,
            f"the CSV cannot be read at line {reader.line_num}: {exc}",
            [ErrorDetail(field=None, message=str(exc), type="csv_syntax")],
        ) from None


def _json_row(number: int, value: Any) -> Row:
    if number > MAX_UPLOAD_ROWS:
        raise _too_many(number)
    if isinstance(value, dict):
        if where := nul_at(value):  # PostgreSQL cannot keep it: a row error, not a failed upload
            return Row(number, None, {}, [ErrorDetail(
                field=where, message="text cannot contain the NUL character (\\u0000)", type="json_item")])
        return Row(number, None, value)
    return Row(
        number,
        None,
        {},
        [ErrorDetail(field=None, message="each item must be a JSON object", type="json_item")],
    )


def _json_error(message: str) -> ApiError:
    return ApiError(
        ErrorCode.VALIDATION,
        f"the JSON body cannot be read: {message}",
        [ErrorDetail(field=None, message=message, type="json_invalid")],
    )


def _int(text: str) -> int | str:
    return int(text) if len(text) <= 18 else text  # a huge one stays text, refused by its field


# numbers keep their exact text, so the field rules see `1e3` as written; NaN too
_DECODER = json.JSONDecoder(parse_float=str, parse_int=_int, parse_constant=str)


def read_ndjson(text: IO[str]) -> Iterator[Row]:
    """The rows of an NDJSON upload (one object per line; blank lines skipped)."""
    number = 0
    for line_no, line in enumerate(text, start=1):
        if not line.strip():
            continue
        number += 1
        try:
            value = _DECODER.decode(line)
        except json.JSONDecodeError as exc:
            raise _json_error(f"line {line_no}: {exc.msg}") from None
        except RecursionError:
            raise _json_error(f"line {line_no}: nested too deeply") from None
        yield _json_row(number, value)


def read_json_array(text: IO[str]) -> Iterator[Row]:
    """The rows of a JSON array upload, decoded item by item from a bounded buffer."""
    buf, pos, eof, number = "", 0, False, 0

    def fill() -> None:
        nonlocal buf, pos, eof
        more = text.read(JSON_BUFFER)
        eof = not more
        buf, pos = buf[pos:] + more, 0

    def skip() -> str:  # the next non-blank character ('' at the end)
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf) or eof:
                return buf[pos] if pos < len(buf) else ""
            fill()

    if skip() != "[":
        raise _json_error("the body must be a JSON array of objects (or NDJSON)")
    pos += 1
    if skip() == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = _DECODER.raw_decode(buf, pos)
                if end >= len(buf) and not eof:  # a value cut at the buffer's end: read on
                    raise json.JSONDecodeError("cut", buf, end)
            except json.JSONDecodeError as exc:
                if eof:
                    raise _json_error(f"{exc.msg} after item {number}") from None
                fill()
                continue
            except RecursionError:
                raise _json_error(f"item {number + 1} is nested too deeply") from None
            number += 1
            pos = end
            yield _json_row(number, value)
            sep = skip()
            pos += 1
            if sep == "]":
                break
            if sep != ",":
                raise _json_error(f"expected ',' or ']' after item {number}")
            skip()
    if skip() != "":
        raise _json_error("text after the closing ']'")
