"""Issue 13's exploit, on the real customer service: an operator actor is vouched for by a signature.

A made-up actor ("alice") set a contact's password over NATS. Now a command naming an actor runs
only with the signature of a trusted signer (the gateway, or the provisioner) over its subject,
time and body; unsigned, forged, altered, stale or foreign-signed ones get `forbidden` and change
nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats as nats_py
import pytest
import pytest_asyncio
from customer.bootstrap import CustomerService
from nats.aio.client import Client as NatsClient
from shared.bus import seed_for
from shared.bus_credentials import public_key
from shared.bus_signing import MAC, SIGNATURE, SIGNER, command_headers, mac_headers, signature_headers

from .conftest import call, create

pytestmark = pytest.mark.servers

SUBJECT = "customer.cmd.contact.set-password"
TYPED = "typed-Password-0042"


@pytest_asyncio.fixture(loop_scope="session")
async def unsigned(nats_url: str, nc: NatsClient) -> AsyncIterator[NatsClient]:
    """A connection with every NATS right (the provisioner's seed) that does not sign what it sends."""
    client = await nats_py.connect(nats_url, nkeys_seed_str=seed_for("provisioner"), inbox_prefix="_INBOX_provisioner")
    yield client
    await client.close()


async def contact_with_password(nc: NatsClient) -> tuple[str, str, str]:
    card = await create(nc)
    email = f"c-{uuid.uuid4().hex[:10]}@example.com"
    added = await call(nc, "customer.cmd.contact.add", {
        "customer_id": card["id"], "contact": {"name": "Ann", "email": email}, "password": TYPED})
    contact = next(c for c in added["contacts"] if c["email"] == email)
    return card["id"], contact["id"], email


async def logs_in(nc: NatsClient, email: str, password: str) -> bool:
    reply = await call(nc, "customer.query.portal.login", {"email": email, "password": password, "ip": "127.0.0.1"})
    return "contact" in reply


async def events_of(service: CustomerService, customer_id: str) -> int:
    return int(await service.pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", customer_id))


async def ask(client: NatsClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    msg = await client.request(SUBJECT, json.dumps(body).encode(), timeout=5, headers=headers)
    return json.loads(msg.data)


async def test_an_actor_nobody_vouches_for_changes_no_password(
    nc: NatsClient, unsigned: NatsClient, service: CustomerService,
) -> None:
    customer_id, contact_id, email = await contact_with_password(nc)
    before = await events_of(service, customer_id)
    body = {"customer_id": customer_id, "contact_id": contact_id, "password": "Attacker-Chosen-99",
            "meta": {"actor": {"kind": "operator", "id": "x", "name": "alice"}}}
    payload = json.dumps(body).encode()
    switch_seed = seed_for("switch")
    gateway_seed = seed_for("gateway")
    assert switch_seed and gateway_seed
    forged = signature_headers(gateway_seed, SUBJECT, payload) | {SIGNATURE: signature_headers(
        switch_seed, SUBJECT, payload)[SIGNATURE]}
    attempts = {
        "unsigned": None,
        "signed by an identity that may not vouch": signature_headers(switch_seed, SUBJECT, payload),
        "a gateway signature by another key": forged,
        "the gateway's signature of another body": signature_headers(gateway_seed, SUBJECT, b"{}"),
        "the gateway's signature of another subject": signature_headers(gateway_seed, "customer.cmd.update", payload),
        "a stale signature": signature_headers(gateway_seed, SUBJECT, payload, now=time.time() - 3600),
    }
    for why, headers in attempts.items():
        reply = await ask(unsigned, body, headers)
        assert reply.get("error", {}).get("code") == "forbidden", (why, reply)
    assert await logs_in(nc, email, TYPED)
    assert not await logs_in(nc, email, "Attacker-Chosen-99")
    assert await events_of(service, customer_id) == before
    # the gateway's own signature of this very command is accepted
    reply = await ask(unsigned, body, signature_headers(gateway_seed, SUBJECT, payload))
    assert "error" not in reply, reply
    assert await logs_in(nc, email, "Attacker-Chosen-99")


async def test_commands_without_an_actor_and_queries_need_no_signature(nc: NatsClient, unsigned: NatsClient) -> None:
    card = await create(nc)
    reply = await call(unsigned, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": "n"}})
    assert "error" not in reply, reply  # the system acts: no actor named, nothing to vouch for
    system = {"kind": "system", "name": "system"}  # what the alerts service sends with a status change
    reply = await call(unsigned, "customer.cmd.update", {"customer_id": card["id"], "changes": {"notes": "m"},
                                                         "meta": {"actor": system}})
    assert "error" not in reply, reply
    got = await call(unsigned, "customer.query.get", {"customer_id": card["id"]})
    assert got["id"] == card["id"]


async def test_a_mac_vouches_only_when_made_with_the_gateways_key_for_this_service(
    nc: NatsClient, unsigned: NatsClient, service: CustomerService,
) -> None:
    """ADR 21: the HMAC keyed by the gateway's and the customer service's nkeys, and only that."""
    customer_id, contact_id, email = await contact_with_password(nc)
    before = await events_of(service, customer_id)
    body = {"customer_id": customer_id, "contact_id": contact_id, "password": "Attacker-Chosen-77",
            "meta": {"actor": {"kind": "operator", "id": "x", "name": "alice"}}}
    payload = json.dumps(body).encode()
    gateway_seed, switch_seed, customer_seed = seed_for("gateway"), seed_for("switch"), seed_for("customer")
    verification_seed = seed_for("verification")
    assert gateway_seed and switch_seed and customer_seed and verification_seed
    customer_key, gateway_key = public_key(customer_seed), public_key(gateway_seed)
    verification_key = public_key(verification_seed)
    # the switch's MAC, presented as the gateway's (its key is another pair's)
    posing = mac_headers(switch_seed, customer_key, SUBJECT, payload) | {SIGNER: gateway_key}
    attempts = {
        "a MAC by an identity that may not vouch": mac_headers(switch_seed, customer_key, SUBJECT, payload),
        "another identity's MAC under the gateway's name": posing,
        "the gateway's MAC for another service": mac_headers(gateway_seed, verification_key, SUBJECT, payload),
        "the gateway's MAC of another body": mac_headers(gateway_seed, customer_key, SUBJECT, b"{}"),
        "the gateway's MAC of another subject": mac_headers(gateway_seed, customer_key, "customer.cmd.update", payload),
        "a stale MAC": mac_headers(gateway_seed, customer_key, SUBJECT, payload, now=time.time() - 3600),
        "a MAC that is not one": mac_headers(gateway_seed, customer_key, SUBJECT, payload) | {MAC: "A" * 43},
    }
    for why, headers in attempts.items():
        reply = await ask(unsigned, body, headers)
        assert reply.get("error", {}).get("code") == "forbidden", (why, reply)
    assert await logs_in(nc, email, TYPED)
    assert await events_of(service, customer_id) == before
    # what the gateway's client sends: the MAC made with its key for the customer service
    assert MAC in command_headers(gateway_seed, SUBJECT, payload)
    reply = await ask(unsigned, body, mac_headers(gateway_seed, customer_key, SUBJECT, payload))
    assert "error" not in reply, reply
    assert await logs_in(nc, email, "Attacker-Chosen-77")
