"""The OpenAPI document: committed as served, standard JSON Schema limits, 413 and the bulk answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway.bootstrap import create_app
from gateway.settings import GatewaySettings

COMMITTED = Path(__file__).parents[4] / "docs" / "openapi.json"
# pydantic's constraint names that JSON Schema validators and client generators ignore
NOT_JSON_SCHEMA = {"ge", "le", "gt", "lt", "max_digits", "decimal_places", "multiple_of"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(GatewaySettings()).openapi()


def _keys(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key
            if key not in ("properties", "examples", "example"):
                yield from _keys(value, f"{path}/{key}")
            else:
                for name, inner in (value.items() if isinstance(value, dict) else ()):
                    yield from _keys(inner, f"{path}/{key}/{name}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _keys(value, f"{path}/{i}")


def test_the_committed_document_is_the_served_one(spec: dict[str, Any]) -> None:
    """`make openapi` was run after the last API change (else: run it and commit docs/openapi.json)."""
    assert json.loads(COMMITTED.read_text()) == json.loads(json.dumps(spec)), "run `make openapi`"


def test_limits_are_standard_json_schema(spec: dict[str, Any]) -> None:
    odd = [f"{path}: {key}" for path, key in _keys(spec) if key in NOT_JSON_SCHEMA]
    assert not odd, odd[:10]
    create = spec["components"]["schemas"]["CustomerCreate"]["properties"]
    assert create["channels"]["maximum"] == 2_000_000_000 and create["channels"]["minimum"] == 0
    tax = re.compile(create["tax"]["pattern"])
    assert [bool(tax.match(v)) for v in ("0", "7.5", "100", "100.0000", "100.5", "101", "7.12345")] == [
        True, True, True, True, False, False, False]
    money = re.compile(create["debit_limit"]["pattern"])
    assert money.match("-1250.5") and not money.match("1e3") and not money.match("1.23456")
    assert create["name"]["maxLength"] == 120


def test_every_body_declares_413(spec: dict[str, Any]) -> None:
    bodies = [(p, m) for p, ops in spec["paths"].items() for m, op in ops.items() if "requestBody" in op]
    assert len(bodies) >= 22
    missing = [f"{m.upper()} {p}" for p, m in bodies if "413" not in spec["paths"][p][m]["responses"]]
    assert not missing, missing


def test_the_bulk_answers_have_schemas(spec: dict[str, Any]) -> None:
    upload = spec["paths"]["/v1/customers/bulk"]["post"]["responses"]
    for status in ("200", "201"):
        assert upload[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/BulkUploadAnswer"}
    for path in ("/v1/customers/bulk-update", "/v1/customers/bulk-delete"):
        answer = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/BulkEditAnswer"}
    assert {"results", "succeeded", "failed"} <= set(spec["components"]["schemas"]["BulkEditAnswer"]["properties"])
