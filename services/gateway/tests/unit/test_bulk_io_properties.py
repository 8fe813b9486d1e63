"""Properties of the bulk upload readers: exports read back as written, any text is rows or a 4xx."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.bulk_io import Row, read_csv, read_json_array, read_ndjson
from gateway.csv_export import ADDRESS, COLUMNS, flatten, render
from gateway.errors import ApiError
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from shared.contracts.bulk import BulkUpdate
from shared.contracts.customer import CustomerCreate

# NUL is refused in any text (PostgreSQL cannot keep it): see the regression test below
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
tag = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1,
              max_size=12).filter(
    lambda t: bool(t.strip()) and ";" not in t)  # ';' is refused: see the regression test below


class Trickle(io.StringIO):
    """A body that arrives a few characters per read, so items cross every buffer boundary."""

    def __init__(self, value: str, step: int) -> None:
        super().__init__(value)
        self.step = step

    def read(self, size: int | None = -1) -> str:
        return super().read(self.step if size is None or size < 0 else min(size, self.step))


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    """A card as the board exports it: text fields, an address, tags."""
    card: dict[str, Any] = {"id": "c-1", "version": 3, "name": draw(text), "currency": draw(text),
                            "notes": draw(text), "website": draw(text)}
    card["address"] = {k: draw(text) for k in draw(st.sets(st.sampled_from(ADDRESS)))}
    # tags as a card holds them: valid by the contract, stripped, sorted, unique
    card["tags"] = CustomerCreate(name="x", tags=draw(st.lists(tag, max_size=5))).tags
    return card


def uploaded(card: dict[str, Any]) -> dict[str, Any]:
    """What an upload of the exported card must read: non-empty cells, tags as the card has them."""
    want: dict[str, Any] = {k: card[k] for k in ("name", "currency", "notes", "website") if card[k] != ""}
    if address := {k: v for k, v in card["address"].items() if v != ""}:
        want["address"] = address
    if card["tags"]:
        want["tags"] = card["tags"]
    return want


def all_rows(rows: Iterator[Row]) -> list[Row]:
    """Read every row; the only exception allowed is a clean 4xx (ApiError)."""
    try:
        return list(rows)
    except ApiError as exc:
        assert exc.details and exc.details[0].type, exc  # says what is wrong
        return []


@given(st.lists(cards(), max_size=5))
def test_an_export_uploads_back_as_it_was(board: list[dict[str, Any]]) -> None:
    csv_text = render([list(COLUMNS), *(flatten(c) for c in board)])
    rows = list(read_csv(io.StringIO(csv_text, newline="")))
    # a card with nothing but empty cells is an empty record: still a row, with no data
    assert [r.data for r in rows] == [uploaded(c) for c in board]
    assert [r.row for r in rows] == list(range(1, len(board) + 1)) and not any(r.errors for r in rows)


@given(st.text(max_size=300))
@example('name,currency\n"unclosed\n')
@example("name,currency\nA,\x00\n")
@example("\ufeffname,currency\nA,EUR\n")
def test_any_csv_text_gives_rows_or_a_clean_refusal(body: str) -> None:
    for row in all_rows(read_csv(io.StringIO(body, newline=""))):
        assert row.row >= 1 and isinstance(row.data, dict)


json_scalars = st.none() | st.booleans() | st.integers(-(10**16), 10**16) | text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(text, inner, max_size=3), max_leaves=10)


@given(st.lists(st.dictionaries(text, json_values, max_size=4), max_size=6), st.integers(1, 9),
       st.sampled_from(["", " ", "\n  ", "\t"]))
def test_a_json_array_reads_item_by_item_as_a_whole_parse_would(
    items: list[dict[str, Any]], step: int, gap: str
) -> None:
    body = "[" + gap + ("," + gap).join(json.dumps(i) for i in items) + gap + "]" + gap
    rows = list(read_json_array(Trickle(body, step)))
    assert [r.data for r in rows] == items
    assert [r.row for r in rows] == list(range(1, len(items) + 1)) and not any(r.errors for r in rows)


@given(st.lists(st.dictionaries(text, json_values, max_size=4), max_size=6))
def test_ndjson_reads_as_a_whole_parse_would(items: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(i) + "\n" for i in items)
    assert [r.data for r in read_ndjson(io.StringIO(body))] == items


@given(st.text(alphabet='[]{}",:0123456789.eE+- \ntruefalsnNaI\\x', max_size=60), st.integers(1, 9))
@example("[1, 2", 1)
@example("[12", 1)
@example("[1,]", 2)
@example("[" * 5000, 7)
def test_any_json_text_gives_rows_or_a_clean_refusal(body: str, step: int) -> None:
    for row in all_rows(read_json_array(Trickle(body, step))):
        assert isinstance(row.data, dict) and (row.data or row.errors or body.count("{"))
    for row in all_rows(read_ndjson(io.StringIO(body))):
        assert isinstance(row.data, dict)


@given(st.lists(st.integers(-(10**17), 10**17) | st.floats(allow_nan=False, allow_infinity=False), min_size=1,
                max_size=5), st.integers(1, 5))
def test_numbers_keep_their_spelling_across_buffer_cuts(numbers: list[Any], step: int) -> None:
    spelled = [json.dumps(n) for n in numbers]
    body = "[" + ",".join('{"tax": ' + s + "}" for s in spelled) + "]"
    rows = list(read_json_array(Trickle(body, step)))
    got = [r.data["tax"] for r in rows]
    assert [str(g) for g in got] == spelled


def test_a_tag_cannot_hold_the_csv_list_separator() -> None:
    """Found by the round trip: an exported tag 'a;b' came back as the two tags 'a' and 'b'."""
    with pytest.raises(ValidationError) as exc:
        CustomerCreate(name="x", tags=["a;b"])
    assert "cannot contain ';'" in str(exc.value)
    with pytest.raises(ValidationError):
        BulkUpdate.model_validate({"ids": [], "add_tags": ["x;y"]})
    [row] = list(read_csv(io.StringIO(render([list(COLUMNS), flatten({"name": "n", "tags": ["a b", "c"]})]))))
    assert row.data["tags"] == ["a b", "c"]


def test_a_nul_character_in_a_json_item_is_a_row_error() -> None:
    """Found by fuzzing: a NUL reached PostgreSQL, which answered 503 "retry" for good."""
    rows = list(read_json_array(io.StringIO('[{"name": "a\\u0000b"}, {"name": "ok", "address": {"city\\u0000": 1}}]')))
    assert [(r.data, r.errors[0].field, r.errors[0].type) for r in rows] == [
        ({}, "name", "json_item"), ({}, "address.city\\u0000", "json_item")]
    [row] = list(read_ndjson(io.StringIO('{"notes": ["x", "\\u0000"]}\n')))
    assert row.data == {} and row.errors[0].field == "notes[1]"
