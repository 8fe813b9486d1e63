"""Real replies of the customer and reporting services validate against the committed AsyncAPI document."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from jsonschema import Draft202012Validator

pytestmark = pytest.mark.servers
DOC = json.loads((Path(__file__).parents[4] / "docs" / "asyncapi.json").read_text())


def problems(subject: str, reply: Any) -> list[str]:
    """Why the reply does not match what the document says the subject answers (empty: it does)."""
    assert f"{subject}:Reply" in DOC["components"]["messages"], f"{subject} is not documented"
    schema = {**DOC, "$ref": f"#/components/messages/{subject}:Reply/payload"}
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(reply)]


async def test_real_replies_match_the_asyncapi_schemas(gateway: Any, real_services: None) -> None:
    nc = gateway.app.state.runtime.nc

    async def ask(subject: str, body: dict[str, Any]) -> Any:
        reply = json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=10)).data)
        assert not problems(subject, reply), (subject, problems(subject, reply), reply)
        return reply

    card = await ask("customer.cmd.create", {"customer": {
        "name": f"doc-{uuid.uuid4().hex[:8]}", "currency": "EUR", "tax": "7.5",
        "address": {"line1": "1 Road", "country": "GB"}, "tags": ["gold"]}})
    assert "error" not in card
    cid = card["id"]
    await ask("customer.query.get", {"customer_id": cid})
    assert "error" in await ask("customer.query.get", {"customer_id": str(uuid.uuid4())})  # ErrorReply
    await ask("customer.query.list", {})
    await ask("customer.query.balance", {"customer_id": cid})
    await ask("customer.query.settings.audit", {})
    await ask("customer.query.settings.number-range", {})
    await ask("reporting.query.summary", {"customer_id": cid, "period": "daily"})
    await ask("reporting.query.lag", {})
    await ask("reporting.query.invoices", {})
    await ask("reporting.query.settings.invoices", {})

    async def audited() -> Any:
        page = await ask("reporting.query.audit", {"customer_id": cid})
        return page if page["items"] else None

    await wait_for(audited, timeout=20, message="the customer's audit entry")


def test_a_reply_the_document_does_not_describe_is_caught() -> None:
    sent = {"customer_id": str(uuid.uuid4()), "period": "daily", "from_day": "2026-01-01", "rows": []}
    assert problems("reporting.query.summary", sent)
