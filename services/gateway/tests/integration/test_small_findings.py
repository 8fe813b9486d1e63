"""The small findings of issue 14: deeply nested TOML is a 422, the password e-mail tells the truth."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.servers


async def test_deeply_nested_config_toml_is_422_not_500(gateway) -> None:
    for deep in ("a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 3000 + "1" + "}" * 3000):
        reply = await gateway.client.post("/v1/customers", json={"name": "Deep", "config_toml": deep})
        assert reply.status_code == 422, reply.text[:300]
        detail = reply.json()["error"]["details"][0]
        assert detail["field"] == "config_toml" and "nested too deeply" in detail["message"]
