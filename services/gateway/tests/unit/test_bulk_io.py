"""Reading bulk uploads: CSV columns, JSON arrays item by item, NDJSON, chunking under 1 MB."""

from __future__ import annotations

import io
import json

import pytest
from gateway import bulk_io
from gateway.bulk_client import STAGE_BYTES, chunks
from gateway.bulk_io import Row, read_csv, read_json_array, read_ndjson
from gateway.csv_export import COLUMNS, flatten, render
from gateway.errors import ApiError


def csv_rows(text: str) -> list[Row]:
    return list(read_csv(io.StringIO(text, newline="")))


def test_csv_columns_become_a_card_object() -> None:
    [row] = csv_rows('name,currency,address.city,verification.email_required,tags,notes,tax\r\n'
                     'Acme,EUR,Leeds,true, a ; b ;,"two\nlines",\r\n')
    assert row.row == 1 and row.line == 2
    assert row.data == {"name": "Acme", "currency": "EUR", "address": {"city": "Leeds"},
                        "verification": {"email_required": "true"}, "tags": ["a", "b"], "notes": "two\nlines"}


def test_csv_rows_count_records_and_lines() -> None:
    rows = csv_rows('name,currency\nA,EUR\n\nB,"U\nSD"\nC,EUR,extra\n')
    assert [(r.row, r.line) for r in rows] == [(1, 2), (2, 4), (3, 6)]
    assert rows[2].errors[0].type == "csv_row"


def test_an_export_header_is_an_upload_header() -> None:
    card = {"id": "x", "name": "Acme", "currency": "EUR", "tags": ["a", "b"], "address": {"city": "Leeds"},
            "verification": {"email_required": True}, "approved_clis": ["+441234567890"], "version": 3}
    [row] = csv_rows(render([list(COLUMNS), flatten(card)]))
    assert row.data == {"name": "Acme", "currency": "EUR", "tags": ["a", "b"], "address": {"city": "Leeds"},
                        "verification": {"email_required": "true"}}


@pytest.mark.parametrize(("header", "field"), [
    ("name,currency,colour", "colour"), ("name,name,currency", "name"), ("name,tax", "currency"),
    ("address_city,name,currency", "address_city"),
])
def test_bad_headers_are_refused_naming_the_column(header: str, field: str) -> None:
    with pytest.raises(ApiError) as exc:
        csv_rows(header + "\nA,EUR,1\n")
    assert exc.value.details[0].field == field


def test_json_array_keeps_number_spelling_and_reads_across_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_io, "JSON_BUFFER", 7)  # every item crosses a buffer boundary
    items = [{"name": f"n{i}", "notes": "x" * i, "currency": "EUR"} for i in range(20)]
    text = json.dumps(items).replace('"EUR"}', '"EUR", "tax": 1e3, "cps": 10.50, "channels": 12}', 1)
    rows = list(read_json_array(io.StringIO(text)))
    assert [r.row for r in rows] == list(range(1, 21))
    assert rows[0].data["tax"] == "1e3" and rows[0].data["cps"] == "10.50" and rows[0].data["channels"] == 12
    assert [r.data["notes"] for r in rows] == [i["notes"] for i in items]
    assert list(read_json_array(io.StringIO(" [ ] "))) == []
    [odd] = list(read_json_array(io.StringIO("[42]")))
    assert odd.errors[0].type == "json_item"


@pytest.mark.parametrize("text", ['{"name": "x"}', '[{"name": "x"}', '[{"name": "x"} {"a": 1}]', '[{}] x', '[{"a": }]'])
def test_broken_json_is_refused(text: str) -> None:
    with pytest.raises(ApiError):
        list(read_json_array(io.StringIO(text)))


def test_ndjson_reads_line_by_line() -> None:
    rows = list(read_ndjson(io.StringIO('{"name": "a", "tax": 2e1}\n\n{"name": "b"}\n')))
    assert [r.data for r in rows] == [{"name": "a", "tax": "2e1"}, {"name": "b"}]
    with pytest.raises(ApiError):
        list(read_ndjson(io.StringIO('{"name": \n')))


def test_chunks_stay_under_the_message_limit() -> None:
    rows = [Row(i + 1, None, {"name": "x", "notes": "y" * 50_000}) for i in range(40)]
    rows.append(Row(41, None, {"notes": "z" * (STAGE_BYTES + 1)}))
    batches = list(chunks(iter(rows)))
    assert all(sum(len(item) + 1 for item in batch) <= STAGE_BYTES for batch in batches)
    assert sum(len(b) for b in batches) == 41
    last = json.loads(batches[-1][-1])
    assert last["data"] == {} and last["errors"][0]["type"] == "row_size"


def test_json_values_that_cannot_travel_are_kept_as_text() -> None:
    [row] = list(read_json_array(io.StringIO('[{"channels": 123456789012345678901234567890, "tax": NaN, "cps": 7}]')))
    assert row.data == {"channels": "123456789012345678901234567890", "tax": "NaN", "cps": 7}
    with pytest.raises(ApiError):
        list(read_json_array(io.StringIO("[" + "[" * 100_000 + "]" * 100_000 + "]")))
    with pytest.raises(ApiError):
        list(read_ndjson(io.StringIO("[" * 100_000 + "]" * 100_000 + "\n")))
