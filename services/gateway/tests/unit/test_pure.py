"""Pure parts of the gateway: If-Match, roles, CSV rows, error details, correlation ids."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from gateway.auth.roles import ROLE_PERMISSIONS, Permission, Role, roles_with
from gateway.auth.tokens import Principal, TokenCache, hash_token, new_token
from gateway.csv_export import COLUMNS, flatten, render
from gateway.dependencies import parse_if_match
from gateway.errors import ApiError, request_details, status_for
from gateway.middleware import correlation_id_from


@pytest.mark.parametrize(("header", "version"), [
    (None, None), ("", None), ("*", None), ("3", 3), ('"3"', 3), ('W/"3"', 3), (' W/"12" ', 12),
])
def test_if_match_forms(header: str | None, version: int | None) -> None:
    assert parse_if_match(header) == version


@pytest.mark.parametrize("header", ["v3", '"3', "3.0", "-1", '"a"', "1" * 30])
def test_if_match_garbage_is_a_validation_error(header: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_if_match(header)
    assert caught.value.code == "validation_error" and caught.value.details[0].field == "If-Match"


def test_role_matrix() -> None:
    can = {role: ROLE_PERMISSIONS[role] for role in Role}
    assert can[Role.ADMIN] == frozenset(Permission)
    assert Permission.CUSTOMERS_WRITE in can[Role.OPERATOR]
    assert Permission.SETTINGS_WRITE not in can[Role.OPERATOR]
    assert Permission.TOKENS_MANAGE not in can[Role.OPERATOR]
    assert can[Role.VIEWER] == {Permission.CUSTOMERS_READ, Permission.SETTINGS_READ}
    assert can[Role.BILLING] == {Permission.CUSTOMERS_READ, Permission.SETTINGS_READ, Permission.PAYMENTS}
    assert roles_with(Permission.TOKENS_MANAGE) == [Role.ADMIN]
    assert roles_with(Permission.PAYMENTS) == [Role.BILLING, Role.ADMIN]
    assert roles_with(Permission.ALERTS) == [Role.OPERATOR, Role.ADMIN]


def test_tokens_are_random_prefixed_and_hashed() -> None:
    first, second = new_token(), new_token()
    assert first != second and first.startswith("pb_") and len(first) >= 43
    assert hash_token(first) != hash_token(second) and len(hash_token(first)) == 64


def test_token_cache_expires_and_forgets() -> None:
    principal = Principal(uuid.uuid4(), "ops", Role.OPERATOR)
    cache = TokenCache(ttl_s=60)
    cache.put("h", principal)
    assert cache.get("h") == principal
    cache.forget("h")
    assert cache.get("h") is None
    stale = TokenCache(ttl_s=-1)
    stale.put("h", principal)
    assert stale.get("h") is None


def test_csv_flattens_nested_fields_and_lists() -> None:
    card = {"id": "1", "name": 'Big "Co", Ltd', "tags": ["a", "b"], "portal_access": False,
            "address": {"country": "DE", "city": None}, "verification": {"email_required": True},
            "debit_limit": "-10.5", "approved_clis": ["+4930123"], "notes": "two\nlines"}
    text = render([list(COLUMNS), flatten(card)])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"] == 'Big "Co", Ltd' and row["tags"] == "a;b" and row["notes"] == "two\nlines"
    assert row["address.country"] == "DE" and row["address.city"] == ""
    assert row["verification.email_required"] == "true" and row["portal_access"] == "false"
    assert row["debit_limit"] == "-10.5" and row["approved_clis"] == "+4930123"
    assert row["verification.mobile_required"] == ""


def test_request_details_drop_the_location_and_explain_bad_json() -> None:
    details = request_details([
        {"loc": ("body", "address", "country"), "msg": "Value error, bad country", "type": "value_error"},
        {"loc": ("query", "limit"), "msg": "too big", "type": "less_than_equal"},
        {"loc": ("body", 7), "msg": "JSON decode error", "type": "json_invalid",
         "ctx": {"error": "Expecting value"}},
        {"loc": ("body",), "msg": "Field required", "type": "missing"},
    ])
    assert [d.field for d in details] == ["address.country", "limit", None, None]
    assert details[0].message == "bad country"
    assert details[2].message == "the body is not valid JSON: Expecting value"
    assert details[3].message == "a JSON body is required"


def test_status_for_codes() -> None:
    assert status_for("version_mismatch") == 412 and status_for("method_not_allowed") == 405
    assert status_for("something_new") == 500


def test_correlation_id_from_headers() -> None:
    assert correlation_id_from([(b"x-request-id", b"abc")]) == "abc"
    assert correlation_id_from([(b"x-correlation-id", b"one"), (b"x-request-id", b"two")]) == "one"
    generated = correlation_id_from([(b"x-correlation-id", b"has space\r\nX: y")])
    assert uuid.UUID(generated)
