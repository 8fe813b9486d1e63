"""Schemathesis against the gateway's own OpenAPI: answers match the document, roles hold, no 5xx, no hang.

`PATCHBAY_FUZZ_EXAMPLES` examples per operation (8 in `make test`; `make fuzz` runs many more).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from gateway.bootstrap import create_app
from gateway.settings import GatewaySettings
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from .conftest import FuzzStack

pytestmark = [pytest.mark.servers, pytest.mark.fuzz]

EXAMPLES = int(os.environ.get("PATCHBAY_FUZZ_EXAMPLES", "8"))  # per operation
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
STATUSES: Counter[int] = Counter()
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


def _openapi() -> dict[str, Any]:
    """The document the gateway serves at /openapi.json (building the app does no I/O)."""
    return create_app(GatewaySettings()).openapi()


schema = schemathesis.openapi.from_dict(_openapi())
schema.config.generation.update(max_examples=EXAMPLES, database="none", with_security_parameters=False)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
# the operator API's writes; the portal (contact sessions) and the PayPal IPN (signed by PayPal)
# have doors of their own with their own tests
operator_writes = schema.include(method=WRITES, path_regex=r"^/v1/")


@pytest.fixture(scope="session")
def role_tokens(fuzz_stack: FuzzStack) -> dict[str, str]:
    """A token of each role, made by the admin."""
    tokens = {"admin": fuzz_stack.token}
    with httpx.Client(base_url=fuzz_stack.http, headers={"Authorization": f"Bearer {fuzz_stack.token}"}) as http:
        for role in ("operator", "viewer", "billing"):
            made = http.post("/v1/tokens", json={"name": f"fuzz-{role}", "role": role})
            assert made.status_code == 201, made.text
            tokens[role] = made.json()["token"]
    return tokens


def _call(case: Case, stack: FuzzStack, token: str) -> Any:
    headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call(base_url=stack.http, headers=headers, timeout=15)
    STATUSES[response.status_code] += 1
    return response, headers


@schema.parametrize()
@FUZZ
def test_answers_match_the_openapi_and_never_fail(case: Case, fuzz_stack: FuzzStack) -> None:
    # as the admin, so that requests reach the services (roles are the next test's)
    response, headers = _call(case, fuzz_stack, fuzz_stack.token)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except Exception as exc:
        raise AssertionError(f"{case.method} {case.formatted_path} -> {response.status_code}\n"
                             f"{case.as_curl_command(headers=headers)}\n{exc}\n{fuzz_stack.errors()}") from None
    assert fuzz_stack.alive(), "".join(fuzz_stack.output[-40:])


@operator_writes.parametrize()
@FUZZ
def test_a_viewer_is_refused_every_write(case: Case, fuzz_stack: FuzzStack, role_tokens: dict[str, str]) -> None:
    response, headers = _call(case, fuzz_stack, role_tokens["viewer"])
    if case.method.upper() != case.operation.method.upper():  # schemathesis tries other methods too
        if case.method.upper() in WRITES:  # (a GET may land on a readable route: not a write)
            assert not 200 <= response.status_code < 300, f"a viewer wrote: {case.method} {case.formatted_path}"
        return
    assert not 200 <= response.status_code < 300, f"a viewer wrote: {case.method} {case.formatted_path}"
    if unparsable_body(response):  # the framework reads the body before any dependency: decided
        return
    assert response.status_code == 403, (
        f"viewer {case.method} {case.formatted_path} -> {response.status_code} {response.text[:300]}\n"
        f"{case.as_curl_command(headers=headers)}")
    assert response.json()["error"]["code"] == "forbidden", response.text


def unparsable_body(response: Any) -> bool:
    """A 400/422 because the body is not JSON at all: said before the role is looked at (ADR 15)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    types = {d.get("type") for d in error.get("details", [])}
    return (response.status_code == 400 and error["code"] == "bad_request") or (
        response.status_code == 422 and types == {"json_invalid"})


@pytest.fixture(scope="module", autouse=True)
def fuzzing_reached_the_services() -> Iterator[None]:
    """After this module's fuzzing, whatever order it ran in: it was answered for real, yes and no."""
    STATUSES.clear()
    yield
    print(dict(sorted(STATUSES.items())))
    total = sum(STATUSES.values())
    if total < 200:  # a few cases picked by hand (-k): too few to judge
        return
    ok = sum(n for code, n in STATUSES.items() if 200 <= code < 300)
    refused = sum(n for code, n in STATUSES.items() if 400 <= code < 500)
    assert ok > total // 50 and refused > total // 5, STATUSES
