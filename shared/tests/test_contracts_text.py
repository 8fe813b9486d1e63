"""Request models refuse text PostgreSQL cannot keep (found by fuzzing the HTTP API)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from shared.contracts.base import nul_at
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
