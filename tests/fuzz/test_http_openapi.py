"""Schemathesis against the gateway's own OpenAPI: valid and invalid requests, never a 5xx, never a hang."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from gateway.bootstrap import create_app
from gateway.settings import GatewaySettings
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case

from .conftest import FuzzStack

pytestmark = [pytest.mark.servers, pytest.mark.fuzz]

MAX_EXAMPLES = 8  # per operation: some 500 requests in all
STATUSES: Counter[int] = Counter()


def _openapi() -> dict[str, Any]:
    """The document the gateway serves at /openapi.json (building the app does no I/O)."""
    return create_app(GatewaySettings()).openapi()


schema = schemathesis.openapi.from_dict(_openapi())
schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none",
                                with_security_parameters=False)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
def test_no_server_error_and_no_hang(case: Case, fuzz_stack: FuzzStack) -> None:
    # as the admin, so that requests reach the services (role checks have their own tests)
    headers = {**(case.headers or {}), "Authorization": f"Bearer {fuzz_stack.token}"}
    response = case.call(base_url=fuzz_stack.http, headers=headers, timeout=15)
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:500]}\n"
        f"{case.as_curl_command(headers=headers)}\n{fuzz_stack.errors()}")
    assert fuzz_stack.alive(), "".join(fuzz_stack.output[-40:])


def test_the_fuzzing_reached_the_services(fuzz_stack: FuzzStack) -> None:
    """Runs after the fuzzing: it was answered for real, both yes and no."""
    ok = sum(n for code, n in STATUSES.items() if 200 <= code < 300)
    refused = sum(n for code, n in STATUSES.items() if 400 <= code < 500)
    print(dict(sorted(STATUSES.items())))
    assert ok > 20 and refused > 100, STATUSES
