"""The whole portal flow through the gateway, with the real customer and verification services.

Operator adds a contact -> password on NOTIFY -> login -> e-mail code (5 wrong tries lock it, a
new one verifies) -> mobile code -> CLI test call on switch.testcall.request -> dial permission
goes from denied (every reason) to allowed. Events, logs and responses never show the password.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import structlog
from alerts.bootstrap import AlertsSettings
from alerts.bootstrap import start as start_alerts
from customer.bootstrap import CustomerSettings
from customer.bootstrap import start as start_customer
from devtools.testing.waiting import wait_for
from gateway.settings import GatewaySettings
from nats.aio.msg import Msg
from reporting.bootstrap import start as start_reporting
from reporting.settings import ReportingSettings
from shared.contracts.notify import SystemMessage
from shared.secrets import Sealer
from verification.bootstrap import VerificationSettings
from verification.bootstrap import start as start_verification

from shared import bus

pytestmark = pytest.mark.servers
KEY = Sealer.new_key()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway_settings(
    module_nats_url: str, make_database: Callable[[], Awaitable[str]], admin_token: str
) -> GatewaySettings:
    return GatewaySettings(
        nats_url=module_nats_url, database_url=await make_database(), admin_token=admin_token,
        request_timeout_s=3.0, secret_key=KEY, portal_login_per_email=6, portal_login_per_ip=1000,
        portal_code_entries_per_contact=50, portal_signups_per_ip=4,
    )


class Recorder:
    """NOTIFY messages and test-call requests, as the notifier and the switch would see them."""

    def __init__(self) -> None:
        self.notes: list[SystemMessage] = []
        self.calls: list[dict[str, Any]] = []
        self.events: list[bytes] = []

    async def on_notify(self, msg: Msg) -> None:
        self.notes.append(SystemMessage.model_validate_json(msg.data))

    async def on_call(self, msg: Msg) -> None:
        self.calls.append(json.loads(msg.data))
        await msg.respond(b'{"accepted":true}')

    async def on_event(self, msg: Msg) -> None:
        self.events.append(msg.data)

    def secret(self, notification_id_prefix: str) -> str | None:
        for note in reversed(self.notes):
            if note.notification_id.startswith(notification_id_prefix) and note.sealed_secret:
                return Sealer(KEY).unseal(note.sealed_secret)
        return None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(gateway: Any) -> AsyncIterator[Recorder]:
    settings = gateway.settings
    customer = await start_customer(CustomerSettings(nats_url=settings.nats_url, database_url=settings.database_url,
                                                     secret_key=KEY))
    verification = await start_verification(VerificationSettings(
        nats_url=settings.nats_url, database_url=settings.database_url, secret_key=KEY))
    # invoices, usage and the low-balance alert behind the portal's account routes
    reporting = await start_reporting(ReportingSettings(
        nats_url=settings.nats_url, database_url=settings.database_url))  # the table's durables
    alerts = await start_alerts(AlertsSettings(nats_url=settings.nats_url, database_url=settings.database_url))
    nc = await bus.connect(settings.nats_url, "provisioner")
    recorder = Recorder()
    subs = [await nc.subscribe("notify.>", cb=recorder.on_notify),
            await nc.subscribe("switch.testcall.request", cb=recorder.on_call),
            await nc.subscribe("events.>", cb=recorder.on_event)]
    await nc.flush()
    yield recorder
    for sub in subs:
        await sub.unsubscribe()
    await nc.drain()
    await alerts.stop()
    await reporting.stop()
    await verification.stop()
    await customer.stop()


async def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json() if reply.content else None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_whole_portal_flow(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    responses: list[str] = []

    async def record(reply: httpx.Response) -> httpx.Response:
        await reply.aread()
        responses.append(reply.text + json.dumps(dict(reply.headers)))
        return reply

    client.event_hooks["response"] = [record]
    with structlog.testing.capture_logs() as logs:
        card = await ok(await client.post("/v1/customers", json={
            "name": f"portal-{uuid.uuid4().hex[:8]}", "channels": 4, "debit_limit": "100",
            "verification": {"email_required": True, "mobile_required": True, "approved_clis_only": True}}), 201)
        cid = card["id"]
        denied = await ok(await client.get(f"/v1/customers/{cid}/dial-permission", params={"cli": "+442079460123"}))
        assert denied["allowed"] is False
        assert denied["reasons"] == ["email_unverified", "mobile_unverified", "cli_not_approved"]
        assert denied["limits"] == {"channels": 4, "cps": "0", "debit_limit": "100"}

        email = f"ann-{uuid.uuid4().hex[:8]}@example.com"
        contact = await ok(await client.post(f"/v1/customers/{cid}/contacts", json={
            "name": "Ann", "email": email, "mobile": "+14155550123", "public_notes": "welcome",
            "private_notes": "operator only"}), 201)
        assert set(contact) >= {"id", "email_verified", "mobile_verified", "ip_whitelist"}
        password = await wait_for(lambda: world.secret("contact_password:"), message="password on NOTIFY")

        login = await ok(await client.post("/portal/v1/login", json={"email": email.upper(), "password": password},
                                           headers={"Authorization": ""}))
        token = login["token"]
        me = await ok(await client.get("/portal/v1/me", headers=bearer(token)))
        assert me["contact"]["id"] == contact["id"] and me["customer"]["id"] == cid
        assert "private_notes" not in me["contact"] and "notes" not in me["customer"]

        sent = await ok(await client.post("/portal/v1/verify/email", headers=bearer(token)))
        code = await wait_for(lambda: world.secret(f"verification:{sent['verification_id']}"))
        wrong = str((int(code) + 1) % 1_000_000).zfill(6)
        tries = [await client.post("/portal/v1/verify/email/confirm", json={"code": wrong}, headers=bearer(token))
                 for _ in range(5)]
        assert [t.status_code for t in tries] == [422] * 5
        assert [t.json()["error"]["code"] for t in tries] == ["code_invalid"] * 4 + ["code_locked"]
        locked = await client.post("/portal/v1/verify/email/confirm", json={"code": code}, headers=bearer(token))
        assert locked.json()["error"]["code"] == "code_locked"
        again = await ok(await client.post("/portal/v1/verify/email", headers=bearer(token)))
        new = await wait_for(lambda: world.secret(f"verification:{again['verification_id']}"))
        await ok(await client.post("/portal/v1/verify/email/confirm", json={"code": new}, headers=bearer(token)))

        mobile = await ok(await client.post("/portal/v1/verify/mobile", headers=bearer(token)))
        sms = await wait_for(lambda: world.secret(f"verification:{mobile['verification_id']}"))
        await ok(await client.post("/portal/v1/verify/mobile/confirm", json={"code": sms}, headers=bearer(token)))

        await ok(await client.post("/portal/v1/clis", json={"number": "+442079460123"}, headers=bearer(token)))
        [call] = [c for c in world.calls if c["customer_id"] == cid]
        assert call["number"] == "+442079460123" and len(call["code"]) == 6
        await ok(await client.post("/portal/v1/clis/+442079460123/confirm", json={"code": call["code"]},
                                   headers=bearer(token)))

        async def allowed() -> bool:
            reply = await client.get(f"/v1/customers/{cid}/dial-permission", params={"cli": "+442079460123"})
            return bool(reply.json()["allowed"])

        await wait_for(allowed, message="dial permission allowed after every verification")
        card = await ok(await client.get(f"/v1/customers/{cid}"))
        assert card["approved_clis"] == ["+442079460123"]
        assert card["contacts"][0]["email_verified"] and card["contacts"][0]["mobile_verified"]
        other_cli = await ok(await client.get(f"/v1/customers/{cid}/dial-permission", params={"cli": "+15550000000"}))
        assert other_cli["reasons"] == ["cli_not_approved"]

        typed = "Operator-Typed-Pass-77"
        await ok(await client.post(f"/v1/customers/{cid}/contacts/{contact['id']}/password",
                                   json={"password": typed}), 204)
        refused = await client.post("/portal/v1/login", json={"email": email, "password": password},
                                    headers={"Authorization": ""})
        assert refused.status_code == 401
        stale = await client.get("/portal/v1/me", headers=bearer(token))
        assert stale.status_code == 401 and "password was changed" in stale.json()["error"]["message"]
        await ok(await client.post("/portal/v1/login", json={"email": email, "password": typed},
                                   headers={"Authorization": ""}))
    client.event_hooks["response"] = []

    secrets_seen = [password, typed, code, new, sms, call["code"]]
    texts = {"responses": " ".join(responses), "logs": json.dumps(logs, default=str),
             "events": b" ".join(world.events).decode()}
    for where, text in texts.items():
        for secret in secrets_seen[:2]:
            assert secret not in text, f"a password appears in the {where}"
    assert not any(c in texts["events"] for c in secrets_seen[2:5]), "a code appears in an event"
    types = {json.loads(e)["type"] for e in world.events}
    assert {"ContactAdded", "ContactPasswordSet", "ContactEmailVerified", "ContactMobileVerified", "CliApproved",
            "EmailVerified", "VerificationCodeRejected", "CliVerified"} <= types


async def test_a_portal_token_reaches_only_its_own_customer(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    cards = [await ok(await client.post("/v1/customers", json={"name": f"iso-{uuid.uuid4().hex[:8]}"}), 201)
             for _ in range(2)]
    mine, theirs = cards
    password = "Isolation-Password-1"
    email = f"iso-{uuid.uuid4().hex[:8]}@example.com"
    contact = await ok(await client.post(f"/v1/customers/{mine['id']}/contacts", json={
        "name": "Mine", "email": email, "password": password}), 201)
    other = await ok(await client.post(f"/v1/customers/{theirs['id']}/contacts", json={
        "name": "Theirs", "email": f"x-{email}", "password": password}), 201)
    token = (await ok(await client.post("/portal/v1/login", json={"email": email, "password": password},
                                        headers={"Authorization": ""})))["token"]
    who = bearer(token)
    ids = {"customer_id": theirs["id"], "contact_id": other["id"]}
    me = await ok(await client.get("/portal/v1/me", params=ids, headers=who))
    assert me["customer"]["id"] == mine["id"] and me["contact"]["id"] == contact["id"]
    own = await ok(await client.post("/portal/v1/verify/email", params=ids, json=ids, headers=who))
    assert own["target"] == email  # ids sent along are ignored: the session says who
    for path, body in (("/portal/v1/verify/email/confirm", {"code": "1", **ids}),
                       ("/portal/v1/clis", {"number": "+14155550100", **ids}),
                       ("/portal/v1/clis/+14155550100/confirm", {"code": "1", **ids})):
        reply = await client.post(path, json=body, headers=who)
        assert reply.status_code == 422, (path, reply.text)  # unknown fields are refused, never obeyed
    # the account routes answer for the session's own customer only, whatever ids are sent along
    foreign_invoice = await _invoice_of(gateway, theirs["id"])
    balance = await ok(await client.get("/portal/v1/balance", params=ids, headers=who))
    assert balance["currency"] == mine["currency"]
    for path in ("/portal/v1/payments", "/portal/v1/invoices"):
        page = await ok(await client.get(path, params=ids, headers=who))
        assert page["total"] == 0 and page["items"] == [], path  # theirs has an invoice; mine has none
    usage = await ok(await client.get("/portal/v1/summary", params={**ids, "from": "2020-01-01"}, headers=who))
    assert usage["totals"]["attempts"] == 0 and "cost" not in usage["totals"] and "profit" not in usage["totals"]
    stolen = await client.get(f"/portal/v1/invoices/{foreign_invoice}.pdf", headers=who)
    assert stolen.status_code == 404, stolen.text
    assert (await ok(await client.get("/portal/v1/alerts/low-balance", params=ids, headers=who)))["threshold"] is None
    for path, body in (("/portal/v1/password", {"current_password": password, "new_password": "x" * 12, **ids}),
                       ("/portal/v1/alerts/low-balance", {"threshold": "5", **ids}),
                       ("/portal/v1/topup/paypal", {"amount": "10", **ids})):
        method = "PUT" if "alerts" in path else "POST"
        reply = await client.request(method, path, json=body, headers=who)
        assert reply.status_code == 422, (path, reply.text)  # unknown fields are refused, never obeyed
    for method, path in (("GET", f"/v1/customers/{theirs['id']}"), ("GET", f"/v1/customers/{mine['id']}"),
                         ("PATCH", f"/v1/customers/{theirs['id']}/contacts/{other['id']}"),
                         ("GET", f"/v1/customers/{theirs['id']}/dial-permission")):
        reply = await client.request(method, path, headers=who, json={} if method == "PATCH" else None)
        assert reply.status_code == 401, (path, reply.text)  # a portal token is no operator token
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "cid": theirs["id"], "sub": other["id"]}, "guess" * 8, algorithm="HS256")
    assert (await client.get("/portal/v1/me", headers=bearer(forged))).status_code == 401
    # the verification service checks the session's pair again: a contact of another customer is refused
    await ok(await client.delete(f"/v1/customers/{mine['id']}/contacts/{contact['id']}"), 204)
    assert (await client.get("/portal/v1/me", headers=who)).status_code == 401
    assert (await client.post("/portal/v1/verify/email", headers=who)).status_code == 401
    for path in ("/portal/v1/balance", "/portal/v1/payments", "/portal/v1/invoices", "/portal/v1/summary",
                 "/portal/v1/alerts/low-balance", f"/portal/v1/invoices/{foreign_invoice}.pdf"):
        assert (await client.get(path, headers=who)).status_code == 401, path


async def _invoice_of(gateway: Any, customer_id: str, days_ago: int = 3) -> str:
    """A call record of a past day for the customer, invoiced; the invoice's id."""
    day = datetime.now(UTC) - timedelta(days=days_ago)
    client: httpx.AsyncClient = gateway.client
    nc = await bus.connect(gateway.settings.nats_url, "provisioner")
    start = day.replace(hour=9, minute=0, second=0, microsecond=0).isoformat()
    await nc.jetstream().publish(f"calls.cdr.{customer_id}", json.dumps({
        "call_id": uuid.uuid4().hex, "customer_id": customer_id, "started_at": start, "answered_at": start,
        "ended_at": start, "duration_s": 60, "billed_duration_s": 60, "charge": "1.2500", "cost": "0.5",
        "disposition": "answered", "sip_code": 200, "pdd_ms": 900}).encode())
    await nc.drain()

    async def issued() -> str | None:
        reply = await client.post(f"/v1/customers/{customer_id}/invoices", json={"days": [day.date().isoformat()]})
        return str(reply.json()["id"]) if reply.status_code == 201 else None

    return await wait_for(issued, timeout=10, message="the call invoiced")


async def test_login_rules_and_rate_limits(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    card = await ok(await client.post("/v1/customers", json={"name": f"rl-{uuid.uuid4().hex[:8]}"}), 201)
    password = "RateLimit-Password-1"
    email = f"rl-{uuid.uuid4().hex[:8]}@example.com"
    contact = await ok(await client.post(f"/v1/customers/{card['id']}/contacts", json={
        "name": "R", "email": email, "password": password, "ip_whitelist": ["10.0.0.0/8"]}), 201)
    anon = {"Authorization": ""}
    outside = await client.post("/portal/v1/login", json={"email": email, "password": password}, headers=anon)
    # refused after the right password: the same 401 as a wrong one (no oracle; issue 14)
    assert outside.status_code == 401 and outside.json()["error"]["message"] == "wrong e-mail or password"
    await ok(await client.patch(f"/v1/customers/{card['id']}/contacts/{contact['id']}",
                                json={"ip_whitelist": ["127.0.0.0/8"]}))
    await ok(await client.post("/portal/v1/login", json={"email": email, "password": password}, headers=anon))
    await ok(await client.patch(f"/v1/customers/{card['id']}", json={"portal_access": False}))
    off = await client.post("/portal/v1/login", json={"email": email, "password": password}, headers=anon)
    assert off.status_code == 401
    # failures only count (the good login cleared the first): `off` and five wrong ones reach the limit of 6
    replies = [await client.post("/portal/v1/login", json={"email": email, "password": "wrong-password"},
                                 headers=anon) for _ in range(7)]
    assert [r.status_code for r in replies] == [401, 401, 401, 401, 401, 429, 429]
    assert int(replies[-1].headers["Retry-After"]) > 0
    assert (await client.post("/portal/v1/login", json={"email": "no", "password": "x"}, headers=anon)).status_code == 422
    short = await client.post(f"/v1/customers/{card['id']}/contacts", json={
        "name": "S", "email": f"s-{email}", "password": "short"})
    assert short.status_code == 422 and short.json()["error"]["details"][0]["field"] == "password"
    taken = await client.post(f"/v1/customers/{card['id']}/contacts", json={"name": "T", "email": email.upper()})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "email_taken"
    notes = await client.post(f"/v1/customers/{card['id']}/contacts", json={
        "name": "N", "email": f"n-{email}", "password": password, "public_notes": f"pw {password}"})
    assert notes.status_code == 422 and notes.json()["error"]["code"] == "password_in_notes"


async def test_the_account_balance_invoices_usage_password_alert_and_top_up(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    card = await ok(await client.post("/v1/customers", json={
        "name": f"acct-{uuid.uuid4().hex[:8]}", "currency": "EUR", "debit_limit": "5", "minimum_payment": "20"}), 201)
    cid = card["id"]
    password, email = "Account-Password-1", f"acct-{uuid.uuid4().hex[:8]}@example.com"
    await ok(await client.post(f"/v1/customers/{cid}/contacts", json={
        "name": "Ann", "email": email, "password": password}), 201)
    anon = {"Authorization": ""}

    async def login(secret: str) -> dict[str, str]:
        reply = await ok(await client.post("/portal/v1/login", json={"email": email, "password": secret},
                                           headers=anon))
        return bearer(reply["token"])

    who, elsewhere = await login(password), await login(password)
    invoice_id = await _invoice_of(gateway, cid)
    await ok(await client.post(f"/v1/customers/{cid}/payments", json={
        "amount": "30", "currency": "EUR", "reference": f"r-{uuid.uuid4().hex[:6]}", "private_note": "VIP"}), 201)
    seen: dict[str, Any] = {}

    async def charged() -> bool:  # the ledger reads the invoiced calls from CALLS on its own time
        seen.update(await ok(await client.get("/portal/v1/balance", headers=who)))
        return bool(seen["balance"] == "28.75")

    await wait_for(charged, timeout=10, interval=0.1, message="the calls' charges on the portal balance")
    balance = seen
    assert balance["currency"] == "EUR" and balance["debit_limit"] == "5.00"
    assert balance["balance"] == "28.75" and balance["available"] == "33.75", balance
    payments = await ok(await client.get("/portal/v1/payments", headers=who))
    assert payments["total"] == 1 and "private_note" not in payments["items"][0]
    invoices = await ok(await client.get("/portal/v1/invoices", headers=who))
    assert [i["id"] for i in invoices["items"]] == [invoice_id]
    pdf = await client.get(f"/portal/v1/invoices/{invoice_id}.pdf", headers=who)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert invoices["items"][0]["document_number"] in pdf.headers["content-disposition"]
    csv_text = (await client.get("/portal/v1/summary", params={"from": "2020-01-01", "format": "csv"},
                                 headers=who)).text
    header, *_, total = csv_text.strip().splitlines()
    assert header.startswith("period_start,attempts") and "cost" not in header and total.startswith("total,1,")
    # the password: the current one first, 12+ characters; every other session ends
    wrong = await client.post("/portal/v1/password", headers=who,
                              json={"current_password": "nope", "new_password": "Another-Password-2"})
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "current_password"
    short = await client.post("/portal/v1/password", headers=who,
                              json={"current_password": password, "new_password": "short"})
    assert short.status_code == 422
    changed = await ok(await client.post("/portal/v1/password", headers=who, json={
        "current_password": password, "new_password": "Another-Password-2"}))
    assert (await client.get("/portal/v1/me", headers=elsewhere)).status_code == 401
    assert (await client.get("/portal/v1/me", headers=who)).status_code == 401
    fresh = bearer(changed["token"])
    assert (await client.get("/portal/v1/me", headers=fresh)).status_code == 200
    assert (await client.post("/portal/v1/login", json={"email": email, "password": password},
                              headers=anon)).status_code == 401
    await login("Another-Password-2")
    # the low-balance e-mail: a rule of the alerts service for this contact
    assert (await ok(await client.get("/portal/v1/alerts/low-balance", headers=fresh)))["threshold"] is None
    await ok(await client.put("/portal/v1/alerts/low-balance", json={"threshold": "10"}, headers=fresh))
    assert (await ok(await client.get("/portal/v1/alerts/low-balance", headers=fresh)))["threshold"] == "10"
    rules = await ok(await client.get("/v1/alerts", params={"customer_id": cid}))
    mine = [r for r in rules["items"] if r["name"].startswith("portal low balance")]
    assert len(mine) == 1 and mine[0]["actions"]["email_operators"] == [email]
    assert mine[0]["area"] == "available_credit" and mine[0]["scope"]["customer_id"] == cid
    await ok(await client.put("/portal/v1/alerts/low-balance", json={"threshold": None}, headers=fresh))
    assert (await ok(await client.get("/portal/v1/alerts/low-balance", headers=fresh)))["threshold"] is None
    # PayPal top-up: offered only when configured, at least the minimum payment
    off = await client.post("/portal/v1/topup/paypal", json={"amount": "25"}, headers=fresh)
    assert off.status_code == 404
    await ok(await client.put("/v1/settings/paypal", json={
        "enabled": True, "receiver_email": "pay@carrier.example",
        "verify_url": "https://ipnpb.sandbox.paypal.com/cgi-bin/webscr"}))
    low = await client.post("/portal/v1/topup/paypal", json={"amount": "19.99"}, headers=fresh)
    assert low.status_code == 422 and low.json()["error"]["details"][0]["type"] == "below_minimum"
    form = await ok(await client.post("/portal/v1/topup/paypal", json={"amount": "25"}, headers=fresh))
    assert form["action"].startswith("https://www.sandbox.paypal.com/")
    assert form["fields"]["custom"] == cid and form["fields"]["amount"] == "25"
    assert form["fields"]["currency_code"] == "EUR" and form["fields"]["notify_url"].endswith("/ipn/paypal")
    await ok(await client.put("/v1/settings/paypal", json={"enabled": False}))


async def test_sign_up_is_off_by_default_answers_alike_and_waits_for_approval(gateway: Any, world: Recorder) -> None:
    client: httpx.AsyncClient = gateway.client
    anon = {"Authorization": ""}
    company, email = f"Signup {uuid.uuid4().hex[:8]} Ltd", f"su-{uuid.uuid4().hex[:8]}@example.com"
    form = {"company": company, "contact_name": "Sam Signup", "email": email,
            "password": "Signup-Password-1", "currency": "EUR"}
    assert (await ok(await client.get("/portal/v1/signup", headers=anon)))["enabled"] is False
    off = await client.post("/portal/v1/signup", json=form, headers=anon)
    assert off.status_code == 404, off.text
    operator = gateway.as_token(await gateway.make_token("operator"))
    assert (await client.put("/v1/settings/signup", json={"enabled": True}, headers=operator)).status_code == 403
    await ok(await client.put("/v1/settings/signup", json={"enabled": True, "currencies": ["EUR", "USD"]}))
    gbp = await client.post("/portal/v1/signup", json={**form, "currency": "GBP"}, headers=anon)
    assert gbp.status_code == 422 and gbp.json()["error"]["details"][0]["field"] == "currency"
    short = await client.post("/portal/v1/signup", json={**form, "password": "short"}, headers=anon)
    assert short.status_code == 422
    first = await client.post("/portal/v1/signup", json=form, headers=anon)
    assert first.status_code == 202, first.text
    again = await client.post("/portal/v1/signup", json={**form, "company": company + " Two"}, headers=anon)
    assert (again.status_code, again.json()) == (202, first.json())  # a known e-mail answers alike
    board = await ok(await client.get("/v1/customers", params={"status": "pending_approval", "q": "Signup"}))
    mine = [c for c in board["items"] if c["name"].startswith(company)]
    assert len(mine) == 1 and mine[0]["status"] == "pending_approval" and mine[0]["currency"] == "EUR"
    assert "signup" in mine[0]["tags"]

    async def code_sent() -> bool:
        return any(n.template == "email_code" and n.to == email for n in world.notes)

    await wait_for(code_sent, timeout=10, message="the e-mail code of the sign-up")
    # the contact may log in while it waits (and verify its e-mail); an operator approves it
    login = await ok(await client.post("/portal/v1/login", json={"email": email, "password": form["password"]},
                                       headers=anon))
    me = await ok(await client.get("/portal/v1/me", headers=bearer(login["token"])))
    assert me["customer"]["status"] == "pending_approval"
    await ok(await client.post(f"/v1/customers/{mine[0]['id']}/status", json={"status": "active"}, headers=operator))
    audit = await ok(await client.get(f"/v1/customers/{mine[0]['id']}/audit", params={"type": "CustomerStatusChanged"}))

    async def audited() -> bool:
        nonlocal audit
        audit = await ok(await client.get(f"/v1/customers/{mine[0]['id']}/audit",
                                          params={"type": "CustomerStatusChanged"}))
        return bool(audit["total"] == 1)

    await wait_for(audited, timeout=10, message="the approval in the audit log")
    assert audit["items"][0]["actor"]["name"].startswith("operator")
    # a few sign-up attempts per address (4 here: off, GBP, first, again): the fifth is refused
    fifth = await client.post("/portal/v1/signup", json={**form, "email": f"x-{email}"}, headers=anon)
    assert fifth.status_code == 429 and int(fifth.headers["Retry-After"]) > 0
    await ok(await client.put("/v1/settings/signup", json={"enabled": False, "currencies": ["USD"]}))
