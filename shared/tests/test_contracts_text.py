"""Request models refuse text PostgreSQL cannot keep (found by fuzzing the HTTP API)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from shared.contracts.base import has_nul, json_may_hold_nul, nul_at
from shared.contracts.customer import CustomerCreate


def test_a_nul_anywhere_in_a_request_is_a_validation_error_naming_where() -> None:
    with pytest.raises(ValidationError) as exc:
        CustomerCreate.model_validate({"name": "a\x00b", "currency": "EUR"})
    assert "name: text cannot contain the NUL character" in str(exc.value)
    with pytest.raises(ValidationError) as nested:
        CustomerCreate.model_validate({"name": "a", "address": {"city": "x\x00"}})
    assert "address.city:" in str(nested.value)
    assert CustomerCreate.model_validate({"name": "a\u0001b"}).name == "a\u0001b"  # other controls pass


def test_nul_at_walks_keys_lists_and_nesting() -> None:
    assert nul_at({"a": [1, {"b": "ok"}, "x\x00"]}) == "a[2]"
    assert nul_at({"k\x00": 1}) == "k\\u0000"  # shown escaped: the answer carries no NUL
    assert nul_at({"a": {"b": ["ok"]}, "c": 3}) is None


@pytest.mark.parametrize("text", [
    '{"name": "a\\u0000b", "currency": "EUR"}',  # the escape in a value
    '{"name": "a", "address": {"ci\\u0000ty": "x"}}',  # in a nested key
    '{"name": "a", "tags": ["x", "y\\u0000"]}',  # in a list
])
def test_json_requests_are_refused_the_same(text: str) -> None:
    # JSON is checked on its text first (the walk only where the escape appears): same refusals
    for data in (text, text.encode()):
        with pytest.raises(ValidationError) as exc:
            CustomerCreate.model_validate_json(data)
        assert "text cannot contain the NUL character" in str(exc.value)


def test_json_without_a_nul_is_accepted_even_with_an_escaped_backslash() -> None:
    assert not json_may_hold_nul(b'{"name": "plain"}')
    # the six characters \u0000 (an escaped backslash before u0000) are text, not a NUL
    card = CustomerCreate.model_validate_json(b'{"name": "a\\\\u0000b", "currency": "EUR"}')
    assert card.name == "a\\u0000b"
    assert has_nul({"a": [{"b": "x\x00"}]}) and not has_nul({"a": [{"b": "x"}], "c": 1})
