"""Retried portal verification requests, with the real customer and verification services.

The same `Idempotency-Key` (the gateway sends it on as `meta.command_id`, scoped to the contact)
answers like the first: no second code on NOTIFY, no second test call, and a retried
confirmation answers Verified again instead of conflict. The portal's own forms send one key
per rendered form. "Nothing more was published" is checked without sleeping: each service
publishes its outbox in order, so once a later message has arrived, an extra earlier one would
have arrived too.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from devtools.testing.waiting import wait_for

from .test_portal import Recorder, bearer, gateway_settings, ok, world

pytestmark = pytest.mark.servers
PASSWORD = "Retry-Password-0001"
# the module's own settings, customer and verification services, as test_portal has them
__all__ = ["gateway_settings", "world"]


async def email_code(gateway: Any, world: Recorder, token: str) -> tuple[str, str]:
    """Ask for an e-mail code (no key) and read it on NOTIFY: (verification id, code)."""
    sent = await ok(await gateway.client.post("/portal/v1/verify/email", headers=bearer(token)))
    vid = sent["verification_id"]
    return vid, await wait_for(lambda: world.secret(f"verification:{vid}"), message="the code on NOTIFY")


async def portal_contact(gateway: Any, **verification: bool) -> tuple[dict[str, Any], str]:
    """A new customer and contact (password known); the contact and its portal session token."""
    client: httpx.AsyncClient = gateway.client
    card = await ok(await client.post("/v1/customers", json={
        "name": f"retry-{uuid.uuid4().hex[:8]}", "verification": verification}), 201)
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    contact = await ok(await client.post(f"/v1/customers/{card['id']}/contacts", json={
        "name": "Rita", "email": email, "mobile": "+14155550142", "password": PASSWORD}), 201)
    login = await ok(await client.post("/portal/v1/login", json={"email": email, "password": PASSWORD},
                                       headers={"Authorization": ""}))
    return {**contact, "customer_id": card["id"]}, login["token"]


def code_notes(world: Recorder, contact_id: str) -> list[str]:
    """The verification ids of the codes sent to a contact on NOTIFY, in order."""
    return [n.notification_id.removeprefix("verification:") for n in world.notes
            if n.notification_id.startswith("verification:") and str(n.contact_id) == contact_id]


def outcomes(world: Recorder, verification_id: str) -> list[str]:
    """The event types published about one verification."""
    found = [json.loads(e) for e in world.events]
    return [e["type"] for e in found
            if e["category"] == "verification" and e["data"]["verification_id"] == verification_id]


def keyed(token: str, key: str) -> dict[str, str]:
    return {**bearer(token), "Idempotency-Key": key}


async def test_a_code_request_retried_with_its_key_sends_one_code(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    contact, token = await portal_contact(gateway)
    first = await ok(await client.post("/portal/v1/verify/email", headers=keyed(token, "send-1")))
    again = await ok(await client.post("/portal/v1/verify/email", headers=keyed(token, "send-1")))
    assert again == first, "a retry with the same key answered another code"
    other = await ok(await client.post("/portal/v1/verify/email", headers=keyed(token, "send-2")))
    assert other["verification_id"] != first["verification_id"], "a new key must ask for a new code"
    assert other["target"] == first["target"] == contact["email"]
    await wait_for(lambda: other["verification_id"] in code_notes(world, contact["id"]),
                   message="the second key's code on NOTIFY")
    assert code_notes(world, contact["id"]) == [first["verification_id"], other["verification_id"]]

    reused = await client.post("/portal/v1/verify/mobile", headers=keyed(token, "send-1"))
    assert reused.status_code == 409, reused.text
    error = reused.json()["error"]
    assert error["code"] == "conflict" and "Idempotency-Key" in error["message"]
    assert [d["field"] for d in error["details"]] == ["Idempotency-Key"]
    wrong_route = await client.post("/portal/v1/verify/email/confirm", json={"code": "000000"},
                                    headers=keyed(token, "send-1"))
    assert wrong_route.status_code == 409 and wrong_route.json()["error"]["details"][0]["field"] == "Idempotency-Key"

    # keys belong to their contact: another contact's same key is its own request
    neighbour, theirs = await portal_contact(gateway)
    own = await ok(await client.post("/portal/v1/verify/email", headers=keyed(theirs, "send-1")))
    assert own["target"] == neighbour["email"] and own["verification_id"] != first["verification_id"]
    long_key = await client.post("/portal/v1/verify/email", headers=keyed(token, "k" * 201))
    assert long_key.status_code == 422 and long_key.json()["error"]["details"][0]["field"] == "Idempotency-Key"


async def test_a_confirmation_retried_with_its_key_answers_verified_again(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    contact, token = await portal_contact(gateway)
    vid, code = await email_code(gateway, world, token)
    confirm = "/portal/v1/verify/email/confirm"
    done = await ok(await client.post(confirm, json={"code": code}, headers=keyed(token, "confirm-1")))
    assert done == {"verification_id": vid, "channel": "email", "target": contact["email"], "verified": True}
    again = await client.post(confirm, json={"code": code}, headers=keyed(token, "confirm-1"))
    assert again.status_code == 200, f"a retried confirmation must answer Verified again: {again.text}"
    assert again.json() == done

    fresh = await client.post(confirm, json={"code": code}, headers=keyed(token, "confirm-2"))
    assert fresh.status_code == 409 and "already used" in fresh.json()["error"]["message"]  # a new key
    unkeyed = await client.post(confirm, json={"code": code}, headers=bearer(token))
    assert unkeyed.status_code == 409  # without a key, as before
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    other_code = await client.post(confirm, json={"code": wrong}, headers=keyed(token, "confirm-1"))
    assert other_code.status_code == 409
    assert other_code.json()["error"]["details"][0]["field"] == "Idempotency-Key"

    # one outcome: a later message of the same outbox arrives after any second one would have
    later = await ok(await client.post("/portal/v1/verify/mobile", headers=bearer(token)))
    await wait_for(lambda: outcomes(world, later["verification_id"]), message="the later code's event")
    assert outcomes(world, vid) == ["VerificationCodeSent", "EmailVerified"]


async def test_a_cli_test_call_and_its_confirmation_retried_with_their_keys(
    gateway: Any, world: Recorder
) -> None:
    client: httpx.AsyncClient = gateway.client
    _, token = await portal_contact(gateway, approved_clis_only=True)
    number = "+44207946" + str(uuid.uuid4().int)[:4]
    body = {"number": number}
    started = await ok(await client.post("/portal/v1/clis", json=body, headers=keyed(token, "call-1")))
    assert await ok(await client.post("/portal/v1/clis", json=body, headers=keyed(token, "call-1"))) == started
    rang = [c for c in world.calls if c["number"] == number]
    assert len(rang) == 1, f"a retried test call request rang {len(rang)} times"
    another = number[:-1] + str((int(number[-1]) + 1) % 10)
    elsewhere = await client.post("/portal/v1/clis", json={"number": another}, headers=keyed(token, "call-1"))
    assert elsewhere.status_code == 409 and elsewhere.json()["error"]["details"][0]["field"] == "Idempotency-Key"

    path = f"/portal/v1/clis/{number}/confirm"
    code = {"code": rang[0]["code"]}
    done = await ok(await client.post(path, json=code, headers=keyed(token, "heard-1")))
    again = await client.post(path, json=code, headers=keyed(token, "heard-1"))
    assert again.status_code == 200 and again.json() == done == {
        "verification_id": started["verification_id"], "channel": "cli", "target": number, "verified": True}
    assert (await client.post(path, json=code, headers=bearer(token))).status_code == 409


async def test_the_email_link_followed_again_with_its_key_answers_verified(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    _, token = await portal_contact(gateway)
    vid, code = await email_code(gateway, world, token)
    link = {"verification_id": vid, "code": code}
    anon = {"Authorization": "", "Idempotency-Key": "link-1"}
    done = await ok(await client.get("/portal/v1/verify/email/link", params=link, headers=anon))
    again = await client.get("/portal/v1/verify/email/link", params=link, headers=anon)
    assert again.status_code == 200 and again.json() == done and done["verified"] is True
    plain = await client.get("/portal/v1/verify/email/link", params=link, headers={"Authorization": ""})
    assert plain.status_code == 409


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form that posts to `action`."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    assert form, f"no form posts to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


async def test_the_portal_form_submitted_twice_sends_one_code(gateway: Any, world: Recorder) -> None:
    contact, _ = await portal_contact(gateway, email_required=True)
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    # https: the session cookies are Secure
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as browser:
        page = await browser.get("/portal/login")
        csrf = form_fields(page.text, "/portal/login")["csrf_token"]
        signed_in = await browser.post("/portal/login", data={
            "email": contact["email"], "password": PASSWORD, "csrf_token": csrf})
        assert signed_in.status_code == 303, signed_in.text
        home = (await browser.get("/portal/home")).text
        actions = ("/portal/verify/email", "/portal/verify/email/confirm", "/portal/verify/mobile",
                   "/portal/verify/mobile/confirm", "/portal/clis")
        keys = [form_fields(home, action)["form_key"] for action in actions]
        assert len(set(keys)) == len(keys), "every form needs its own key"

        send = form_fields(home, "/portal/verify/email")
        replies = [await browser.post("/portal/verify/email", data=send) for _ in range(2)]
        assert [r.status_code for r in replies] == [200, 200]
        assert all(contact["email"] in r.text and 'id="code-sent"' in r.text for r in replies)
        rendered = form_fields(replies[1].text, "/portal/verify/email")
        assert rendered["form_key"] != send["form_key"], "a new render needs a new key"
        assert (await browser.post("/portal/verify/email", data=rendered)).status_code == 200

        await wait_for(lambda: len(code_notes(world, contact["id"])) >= 2, message="the new form's code")
        sent = code_notes(world, contact["id"])
        assert len(sent) == 2, f"one form posted twice sent {len(sent) - 1} codes"
        code = await wait_for(lambda: world.secret(f"verification:{sent[1]}"))

        confirm = {**form_fields(replies[1].text, "/portal/verify/email/confirm"), "code": code}
        confirmed = [await browser.post("/portal/verify/email/confirm", data=confirm) for _ in range(2)]
        assert [r.status_code for r in confirmed] == [303, 303], [r.text[:300] for r in confirmed]
        assert all(r.headers["location"].endswith("notice=email-verified") for r in confirmed)
