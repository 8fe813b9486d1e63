"""customer.query.as-of: a card folded from the stored events up to an instant (ADR 6)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NatsClient
from shared.contracts.customer import Subjects

from .conftest import call, create

pytestmark = pytest.mark.servers


async def as_of(nc: NatsClient, customer_id: str, at: datetime) -> dict:
    return await call(nc, Subjects.AS_OF, {"customer_id": customer_id, "at": at.isoformat()})  # type: ignore[no-any-return]


async def instant() -> datetime:
    """Now, with a little room on both sides so events land clearly before or after it."""
    await asyncio.sleep(0.01)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.01)
    return moment


async def test_the_card_as_it_was_at_each_instant(nc: NatsClient) -> None:
    before = await instant()
    card = await create(nc, channels=3)
    cid = card["id"]
    created = await instant()
    updated = await call(nc, "customer.cmd.update", {"customer_id": cid,
                                                     "changes": {"channels": 9, "tags": ["vip"]}})
    assert "error" not in updated, updated
    changed = await instant()
    deleted = await call(nc, "customer.cmd.delete", {"customer_id": cid})
    assert "error" not in deleted, deleted

    then = await as_of(nc, cid, created)
    assert then["as_of"].startswith(created.isoformat()[:19])
    assert then["card"] == card
    assert then["card"]["channels"] == 3 and then["card"]["tags"] == [] and then["card"]["version"] == 1
    assert (await as_of(nc, cid, changed))["card"] == updated
    now = await as_of(nc, cid, datetime.now(UTC))
    assert now["card"]["channels"] == 9 and now["card"]["deleted"] is True and now["card"]["version"] == 3

    missing = await as_of(nc, cid, before)
    assert missing["error"]["code"] == "not_found" and cid in missing["error"]["message"]


async def test_an_unknown_customer_is_not_found_and_bad_input_is_a_validation_error(nc: NatsClient) -> None:
    unknown = await as_of(nc, str(uuid.uuid4()), datetime.now(UTC))
    assert unknown["error"]["code"] == "not_found"
    no_instant = await call(nc, Subjects.AS_OF, {"customer_id": str(uuid.uuid4())})
    assert no_instant["error"]["code"] == "validation_error"
    assert any(d["field"] == "at" for d in no_instant["error"]["details"]), no_instant
    not_an_id = await call(nc, Subjects.AS_OF, {"customer_id": "nope", "at": datetime.now(UTC).isoformat()})
    assert not_an_id["error"]["code"] == "validation_error"
