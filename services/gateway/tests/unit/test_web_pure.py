"""The web pages' pure parts: errors beside fields, changed fields, the board's URL state, cookies."""

from __future__ import annotations

import httpx
from gateway.web.api_client import ApiResult
from gateway.web.board_pages import BoardQuery, keep_rows
from gateway.web.forms import changed_fields, errors_from, idempotency_headers, new_form_key, toml_error_line
from gateway.web.session import ConsoleSettings, CookieSealer, Session, csrf_matches
from starlette.datastructures import ImmutableMultiDict


def failure(status: int, code: str, message: str, details: list[dict[str, object]]) -> ApiResult:
    return ApiResult(status, {"error": {"code": code, "message": message, "details": details}}, httpx.Headers())


def test_each_detail_goes_beside_the_field_it_names() -> None:
    result = failure(422, "validation_error", "the request is not valid", [
        {"field": "address.country", "message": "'XX' is not a country"},
        {"field": "changes.tax", "message": "at most 100"},
        {"field": "tags.2", "message": "too long"},
        {"field": "unknown_thing", "message": "odd"},
        {"field": None, "message": "whole request"},
    ])
    errors = errors_from(result, {"address.country", "tax", "tags"})
    assert errors.get("address.country") == ["'XX' is not a country"]
    assert errors.get("tax") == ["at most 100"]
    assert errors.get("tags") == ["too long"]
    assert errors.general == ["unknown_thing: odd", "whole request"]


def test_codes_without_details_find_their_field_and_412_says_reload() -> None:
    taken = errors_from(failure(409, "name_taken", "another customer has this name", []), {"name"})
    assert taken.get("name") == ["another customer has this name"] and not taken.general
    stale = errors_from(failure(412, "version_mismatch", "version 3 is not current", []), {"name"})
    assert stale.general[0] == "version 3 is not current" and "reload" in stale.general[1]
    forbidden = errors_from(failure(403, "forbidden", "role 'viewer' may not do this", []), {"name"})
    assert forbidden.general == ["role 'viewer' may not do this"]


def test_the_toml_error_position() -> None:
    errors = errors_from(failure(422, "validation_error", "bad", [
        {"field": "config_toml", "message": "config_toml is not valid TOML: Invalid value (at line 3, column 7)"},
    ]), {"config_toml"})
    assert toml_error_line(errors) == (3, 7)


def test_only_changed_fields_are_sent() -> None:
    before = {"tax": "5", "channels": 3, "tags": ["b", "a"], "website": None,
              "address": {"city": "X", "country": "GB"}, "portal_access": True}
    after = {"tax": "5.00", "channels": "3", "tags": ["a", "b"], "website": None,
             "address": {"city": "X", "country": "GB"}, "portal_access": False}
    assert changed_fields(before, after) == {"portal_access": False}
    assert changed_fields(before, {**after, "address": {"city": "Y", "country": "GB"}})["address"] == {
        "city": "Y", "country": "GB"}


def test_board_query_round_trips_through_its_links() -> None:
    query = BoardQuery.parse(ImmutableMultiDict([
        ("q", "acme"), ("status", "active"), ("status", "bogus"), ("tag", "gold"), ("limit", "5000"),
        ("created_from", "2026-01-01"), ("sort", "-channels"),
    ]))
    assert query.status == ("active",) and query.limit == 1000
    assert ("created_from", "2026-01-01T00:00:00Z") in query.filters()
    assert query.filter_dict() == {"q": "acme", "status": ["active"], "tag": ["gold"],
                                   "created_from": "2026-01-01T00:00:00Z"}
    again = BoardQuery.parse(ImmutableMultiDict(httpx.URL(query.link(cursor="c1")).params.multi_items()))
    assert (again.q, again.status, again.sort, again.cursor) == ("acme", ("active",), "-channels", "c1")


def test_keep_rows_keeps_the_header_and_the_ticked_ids() -> None:
    content = b"id,name\r\n1,a\r\n2,\"b, c\"\r\n3,d\r\n"
    assert keep_rows(content, {"2"}).decode().splitlines() == ["id,name", '2,"b, c"']


def test_sealed_sessions_open_only_with_the_same_key() -> None:
    settings = ConsoleSettings()
    sealer = CookieSealer("key one", settings)
    value = sealer.seal(Session(token="pb_secret", csrf="c", name="ops", role="viewer"))
    assert "pb_secret" not in value
    assert sealer.open(value) == Session(token="pb_secret", csrf="c", name="ops", role="viewer")
    assert CookieSealer("key two", settings).open(value) is None
    assert sealer.open(value[:-2] + "xx") is None
    assert csrf_matches("abc", "abc") and not csrf_matches("abc", "abd") and not csrf_matches(None, None)


def test_a_form_key_makes_one_idempotency_key_per_form_and_values() -> None:
    key = new_form_key()
    assert key != new_form_key()
    form = ImmutableMultiDict({"form_key": key, "code": "123456"})
    assert idempotency_headers(form) == {"Idempotency-Key": key}
    same = idempotency_headers(form, "123456")
    assert same == idempotency_headers(ImmutableMultiDict(form), "123456")
    assert same["Idempotency-Key"].startswith(key + ".") and same != idempotency_headers(form, "654321")
    for bad in ({}, {"form_key": ""}, {"form_key": "short"}, {"form_key": "x" * 65}, {"form_key": "a b" * 8}):
        assert idempotency_headers(ImmutableMultiDict(bad), "1") == {}


def test_previous_walks_back_page_by_page_to_the_first() -> None:
    def follow(link: str) -> BoardQuery:
        return BoardQuery.parse(ImmutableMultiDict(httpx.URL(link).params.multi_items()))

    first = BoardQuery.parse(ImmutableMultiDict([("q", "acme"), ("limit", "10")]))
    assert first.previous_link() is None
    second = follow(first.next_link("c2", 10))
    third = follow(second.next_link("c3", 10))
    assert (third.cursor, third.at, third.q) == ("c3", 20, "acme")
    back = follow(third.previous_link() or "")
    assert (back.cursor, back.at, back.q) == ("c2", 10, "acme")
    start = follow(back.previous_link() or "")
    assert (start.cursor, start.at, start.previous_link()) == ("", 0, None)
    assert follow(third.link(cursor="", at=0)).back == ""  # a new sort or « First forgets the trail
