"""GET /v1/demo/test-calls outside demo mode: no demo switch is 404 `not_found`, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.servers


async def test_without_a_demo_switch_the_test_calls_are_not_found(gateway: Any) -> None:
    reply = await gateway.client.get("/v1/demo/test-calls")
    assert reply.status_code == 404, reply.text
    error = reply.json()["error"]
    assert error["code"] == "not_found" and "demo mode only" in error["message"], error
