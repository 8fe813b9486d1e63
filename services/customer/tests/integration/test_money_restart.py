"""Credit survives a restart of the customer service: checkpointed, never reset to zero or unlimited."""

from __future__ import annotations

from typing import Any

import pytest
from customer.bootstrap import CustomerService, CustomerSettings, start
from nats.aio.client import Client as NatsClient

from .conftest import create
from .test_money import cdr, pay, wait_answer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_credit_survives_a_restart(nats_url: str, make_database: Any, nats: NatsClient) -> None:
    settings = CustomerSettings(nats_url=nats_url, database_url=await make_database())
    svc: CustomerService = await start(settings)
    try:
        cid = (await create(nats, currency="EUR"))["id"]
        await pay(nats, cid, "7")
        call_id = await cdr(nats, cid, "2")
        await wait_answer(nats, cid, lambda a: a["credit"]["balance"] == "5.00", timeout=5)
    finally:
        await svc.stop()
    svc = await start(settings)
    try:
        answer = await wait_answer(nats, cid, lambda a: "credit" in a and a["credit"] is not None, timeout=5)
        assert answer["credit"]["balance"] == "5.00" and answer["allowed"]
        await cdr(nats, cid, "2", call_id=call_id)  # the same call again: counted once
        await cdr(nats, cid, "1")
        after = await wait_answer(nats, cid, lambda a: a["credit"]["balance"] != "5.00", timeout=5)
        assert after["credit"]["balance"] == "4.00"
    finally:
        await svc.stop()
