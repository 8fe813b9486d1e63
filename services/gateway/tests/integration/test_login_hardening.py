"""Portal login under attack: no password oracle, no lockout by strangers, real client addresses,
IPv6 by /64, bounded password checks (issue 14). A fake customer service answers the logins."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from gateway.settings import GatewaySettings
from nats.aio.msg import Msg

from shared import bus

pytestmark = pytest.mark.servers
SUBJECT = "customer.query.portal.login"
PROXY = "127.0.0.1"  # the test client's own peer address, configured as a trusted proxy
VIEW = {"contact": {"id": str(uuid.uuid4())}, "customer": {"id": str(uuid.uuid4())}}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway_settings(
    module_nats_url: str, make_database: Callable[[], Awaitable[str]], admin_token: str
) -> GatewaySettings:
    return GatewaySettings(
        nats_url=module_nats_url, database_url=await make_database(), admin_token=admin_token,
        request_timeout_s=3.0, portal_login_per_email=3, portal_login_per_ip=8,
        portal_login_concurrency=1, trusted_proxies=f"{PROXY}, 10.20.0.0/16",
    )


class Customers:
    """Answers logins like the customer service: `right` is the password; `blocked@` is refused after it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.hold = asyncio.Event()
        self.held = asyncio.Event()

    async def on_login(self, msg: Msg) -> None:
        asyncio.get_running_loop().create_task(self._answer(msg))  # answer logins concurrently

    async def _answer(self, msg: Msg) -> None:
        body = json.loads(msg.data)
        self.seen.append(body)
        if body["email"].startswith("slow"):
            self.held.set()
            await asyncio.wait_for(self.hold.wait(), timeout=10)
        if body["password"] != "right":
            answer: dict[str, Any] = {"error": {"code": "unauthenticated", "message": "wrong e-mail or password",
                                                "details": []}}
        elif body["email"].startswith("blocked"):
            answer = {"error": {"code": "forbidden", "message": "this address is not in the contact's IP whitelist",
                                "details": []}}
        else:
            answer = VIEW
        await msg.respond(json.dumps(answer).encode())


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customers(gateway: Any) -> AsyncIterator[Customers]:
    fake = Customers()
    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    sub = await nc.subscribe(SUBJECT, cb=fake.on_login)
    await nc.flush()
    yield fake
    await sub.unsubscribe()
    await nc.drain()


async def login(gateway: Any, email: str, password: str, client_ip: str) -> httpx.Response:
    return await gateway.client.post("/portal/v1/login", json={"email": email, "password": password},
                                     headers={"X-Forwarded-For": client_ip, "Authorization": ""})


async def test_a_refused_login_with_the_right_password_answers_like_a_wrong_one(gateway, customers) -> None:
    right = await login(gateway, "blocked@example.com", "right", "192.0.2.10")
    wrong = await login(gateway, "blocked@example.com", "wrong", "192.0.2.10")
    assert right.status_code == wrong.status_code == 401, (right.text, wrong.text)
    assert right.json() == wrong.json()
    assert right.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")


async def test_a_stranger_cannot_lock_a_contact_out(gateway, customers) -> None:
    answers = [(await login(gateway, "owner@example.com", "guess", "198.51.100.66")).status_code
               for _ in range(4)]
    assert answers == [401, 401, 401, 429]  # the stranger backs off...
    mine = await login(gateway, "owner@example.com", "right", "198.51.100.7")
    assert mine.status_code == 200, mine.text  # ...the contact, from elsewhere, still gets in


async def test_only_failures_count_towards_the_e_mail_limit(gateway, customers) -> None:
    for _ in range(5):  # past portal_login_per_email=3, all good
        reply = await login(gateway, "often@example.com", "right", "198.51.100.8")
        assert reply.status_code == 200, reply.text
    for _ in range(2):
        await login(gateway, "often@example.com", "typo", "198.51.100.9")
    assert (await login(gateway, "often@example.com", "right", "198.51.100.9")).status_code == 200
    # the good login cleared the two failures: three more are allowed before the back-off
    codes = [(await login(gateway, "often@example.com", "typo", "198.51.100.9")).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(gateway, customers) -> None:
    await login(gateway, "who@example.com", "right", "203.0.113.9")
    assert customers.seen[-1]["ip"] == "203.0.113.9"  # through the trusted proxy
    transport = httpx.ASGITransport(app=gateway.app, client=("192.0.2.200", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as direct:
        await direct.post("/portal/v1/login", json={"email": "who@example.com", "password": "right"},
                          headers={"X-Forwarded-For": "203.0.113.9"})
    assert customers.seen[-1]["ip"] == "192.0.2.200"  # a client's own header is ignored
    # hops are read from the right: the first one that is not a trusted proxy is the client
    await login(gateway, "who@example.com", "right", "1.2.3.4, 203.0.113.77, 10.20.3.4")
    assert customers.seen[-1]["ip"] == "203.0.113.77"


async def test_ipv6_addresses_of_one_slash_64_share_a_limit(gateway, customers) -> None:
    for n in range(8):
        reply = await login(gateway, f"v6-{n}@example.com", "right", f"2001:db8:7:8::{n + 1:x}")
        assert reply.status_code == 200, reply.text
    neighbour = await login(gateway, "v6-x@example.com", "right", "2001:db8:7:8:ffff:1:2:3")
    assert neighbour.status_code == 429, neighbour.text
    elsewhere = await login(gateway, "v6-y@example.com", "right", "2001:db8:7:9::1")
    assert elsewhere.status_code == 200, elsewhere.text


async def test_password_checks_in_flight_are_bounded_without_a_queue(gateway, customers) -> None:
    first = asyncio.create_task(login(gateway, "slow@example.com", "right", "192.0.2.31"))
    await asyncio.wait_for(customers.held.wait(), timeout=5)
    second = await asyncio.wait_for(login(gateway, "quick@example.com", "right", "192.0.2.32"), timeout=1)
    assert second.status_code == 503, second.text
    assert second.headers["retry-after"] == "1"
    assert "too many logins at once" in second.json()["error"]["message"]
    customers.hold.set()
    assert (await asyncio.wait_for(first, timeout=5)).status_code == 200
    third = await login(gateway, "quick@example.com", "right", "192.0.2.32")
    assert third.status_code == 200, third.text
