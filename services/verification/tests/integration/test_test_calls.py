"""Portal CLI test calls cannot be turned into toll fraud: allow and deny lists by prefix and a daily
cap per customer, refused with a clear error (issue 14). Real customer service, fake switch."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from shared.secrets import Sealer
from verification.bootstrap import VerificationSettings
from verification.bootstrap import start as start_verification
from verification.domain.test_calls import parse_prefixes

KEY = Sealer.new_key()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(nats_url: str, make_database: Any) -> AsyncIterator[None]:
    db = await make_database()
    customer = await start_customer(CustomerSettings(nats_url=nats_url, database_url=db, secret_key=KEY))
    verification = await start_verification(VerificationSettings(
        nats_url=nats_url, database_url=db, secret_key=KEY, code_requests_per_window=50,
        test_call_allow_prefixes="+44, +1415, +1900", test_calls_per_customer_per_day=3, request_timeout_s=2.0))
    yield
    await verification.stop()
    await customer.stop()


class Portal:
    """Calls the services as the gateway would; records what the switch is asked to ring."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.rung: list[str] = []

    async def on_call(self, msg: Msg) -> None:
        self.rung.append(json.loads(msg.data)["number"])
        await msg.respond(b'{"accepted":true}')

    async def call(self, subject: str, body: dict[str, Any]) -> Any:
        return json.loads((await self.nc.request(subject, json.dumps(body).encode(), timeout=5)).data)

    async def contact(self, customer_id: str | None = None) -> dict[str, Any]:
        """A caller (customer and contact ids) of a new contact, on a new customer unless one is given."""
        if customer_id is None:
            card = await self.call("customer.cmd.create", {"customer": {"name": f"t-{uuid.uuid4().hex[:8]}"}})
            customer_id = card["id"]
        person = {"name": "Tess", "email": f"t-{uuid.uuid4().hex[:8]}@example.com"}
        card = await self.call("customer.cmd.contact.add", {"customer_id": customer_id, "contact": person})
        added = next(c for c in card["contacts"] if c["email"] == person["email"])
        return {"customer_id": customer_id, "contact_id": added["id"], "ip": "127.0.0.1"}

    async def test_call(self, who: dict[str, Any], number: str) -> Any:
        return await self.call("verification.cmd.start-cli", {"caller": who, "number": number})


@pytest_asyncio.fixture(loop_scope="session")
async def portal(services: None, nats: NatsClient) -> AsyncIterator[Portal]:
    p = Portal(nats)
    sub = await nats.subscribe("switch.testcall.request", cb=p.on_call)
    await nats.flush()

    async def answers() -> bool:
        reply = await p.call("verification.cmd.confirm-link", {"verification_id": str(uuid.uuid4()), "code": "1"})
        return reply["error"]["code"] == "code_not_requested"

    await wait_for(answers, message="verification service answering")
    yield p
    await sub.unsubscribe()


async def test_premium_rate_numbers_are_never_rung(portal: Portal) -> None:
    who = await portal.contact()
    refused = await portal.test_call(who, "+19005550100")  # allowed by the list, denied by default
    assert refused["error"]["code"] == "forbidden", refused
    assert "not allowed" in refused["error"]["message"] and "deny list" in refused["error"]["message"]
    assert refused["error"]["details"][0]["field"] == "number"
    assert "+19005550100" not in portal.rung


async def test_only_allowed_prefixes_are_rung(portal: Portal) -> None:
    who = await portal.contact()
    refused = await portal.test_call(who, "+33123456789")
    assert refused["error"]["code"] == "forbidden" and "not on the list" in refused["error"]["message"]
    started = await portal.test_call(who, "+442079460123")
    assert "error" not in started, started
    assert portal.rung[-1] == "+442079460123"


async def test_a_customer_has_a_daily_cap_across_its_contacts(portal: Portal) -> None:
    first = await portal.contact()
    second = await portal.contact(first["customer_id"])
    for who, number in ((first, "+442079460001"), (second, "+442079460002"), (first, "+14155550003")):
        assert "error" not in await portal.test_call(who, number)
    over = await portal.test_call(second, "+442079460004")
    assert over["error"]["code"] == "rate_limited", over
    assert "3 test calls of the last 24 hours" in over["error"]["message"]
    assert "+442079460004" not in portal.rung
    other = await portal.contact()  # another customer is not affected
    assert "error" not in await portal.test_call(other, "+442079460005")


def test_a_bad_prefix_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=r"not an E\.164 prefix"):
        parse_prefixes("+44, 0900")
    with pytest.raises(ValueError, match=r"E\.164 prefix"):
        VerificationSettings(test_call_deny_prefixes="+1900,premium")
