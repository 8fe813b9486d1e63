"""The audit log, from real customer events and events of other streams (as-of: customer tests)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from shared.dead_letters import DeadLetter, dead_letters
from shared.envelope import Actor, EventEnvelope, Metadata

from .conftest import call, create_customer

pytestmark = pytest.mark.servers
OPERATOR = {"kind": "operator", "id": "tok-2", "name": "bob", "ip": "198.51.100.9"}


async def audit(nc: NatsClient, **query: Any) -> dict[str, Any]:
    page = await call(nc, "reporting.query.audit", query)
    assert "error" not in page, page
    return page  # type: ignore[no-any-return]


async def wait_entries(nc: NatsClient, customer_id: str, n: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        page = await audit(nc, customer_id=customer_id, limit=100)
        return page["items"] if len(page["items"]) >= n else None

    return await wait_for(enough, timeout=10, message=f"{n} audit entries of {customer_id}")


async def test_every_change_is_in_the_timeline_with_who_where_why_and_the_diff(nc: NatsClient) -> None:
    card = await create_customer(nc, tax="7.5", currency="EUR")
    cid = card["id"]
    updated = await call(nc, "customer.cmd.update", {
        "meta": {"actor": OPERATOR, "reason": "customer asked", "correlation_id": "corr-1"},
        "customer_id": cid, "changes": {"name": card["name"] + "-b", "channels": 5}})
    assert "error" not in updated, updated
    await call(nc, "customer.cmd.set-status", {"meta": {"actor": OPERATOR}, "customer_id": cid,
                                               "status": "inactive"})
    items = await wait_entries(nc, cid, 3)
    assert [i["type"] for i in items] == ["CustomerStatusChanged", "CustomerUpdated", "CustomerCreated"]
    status, update, created = items
    assert created["action"] == "created" and created["actor"]["name"] == "alice"
    assert created["ip"] == "192.0.2.7" and created["changes"]["currency"] == {"old": None, "new": "EUR"}
    assert update["action"] == "updated" and update["reason"] == "customer asked"
    assert update["correlation_id"] == "corr-1" and update["actor"] == {"kind": "operator", "id": "tok-2",
                                                                       "name": "bob"}
    assert update["changes"]["name"] == {"old": card["name"], "new": card["name"] + "-b"}
    assert update["changes"]["channels"] == {"old": 0, "new": 5}
    assert status["changes"]["status"] == {"old": "active", "new": "inactive"}
    assert [i["version"] for i in items] == [3, 2, 1]


async def test_filters_and_paging(nc: NatsClient) -> None:
    card = await create_customer(nc)
    cid = card["id"]
    for i in range(4):
        await call(nc, "customer.cmd.update", {"meta": {"actor": OPERATOR}, "customer_id": cid,
                                               "changes": {"notes": f"n{i}"}})
    items = await wait_entries(nc, cid, 5)
    assert (await audit(nc, customer_id=cid, actor="bob"))["total"] == 4
    assert (await audit(nc, customer_id=cid, actor="tok-2"))["total"] == 4
    assert (await audit(nc, customer_id=cid, type=["CustomerCreated"]))["total"] == 1
    middle = items[2]["occurred_at"]
    assert (await audit(nc, customer_id=cid, since=middle))["total"] == 3
    assert (await audit(nc, customer_id=cid, until=middle))["total"] == 2
    seen: list[str] = []
    cursor = None
    while True:
        page = await audit(nc, customer_id=cid, limit=2, cursor=cursor)
        assert page["total"] == 5
        seen += [i["event_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["event_id"] for i in items]
    bad = await call(nc, "reporting.query.audit", {"cursor": "not-a-cursor"})
    assert bad["error"]["code"] == "validation_error"


async def test_events_of_other_streams_join_the_timeline_without_secrets(nc: NatsClient) -> None:
    card = await create_customer(nc)
    cid = card["id"]
    event = EventEnvelope(
        type="VerificationSucceeded", category="verification", stream_id=str(uuid.uuid4()), version=1,
        metadata=Metadata(actor=Actor(kind="portal", id="contact-1", name="jane@example.com", ip="203.0.113.5")),
        data={"customer_id": cid, "channel": "email", "code": "493817", "code_hash": "x",
              "password": "hunter2", "contact_id": "contact-1"},
    )
    await nc.jetstream().publish(event.subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": str(event.event_id)})
    items = await wait_entries(nc, cid, 2)
    entry = items[0]
    assert entry["action"] == "verification succeeded" and entry["actor"]["kind"] == "portal"
    assert entry["data"] == {"customer_id": cid, "channel": "email", "contact_id": "contact-1"}
    assert "493817" not in json.dumps(items) and "hunter2" not in json.dumps(items)
    everything = await audit(nc, type=["VerificationSucceeded"])
    assert str(event.event_id) in [i["event_id"] for i in everything["items"]]


async def test_a_malformed_event_is_dead_lettered_and_the_audit_goes_on(nc: NatsClient) -> None:
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:8]
    await js.publish(f"events.notification.x{tag}.Broken", b"{not json")
    card = await create_customer(nc)
    await wait_entries(nc, card["id"], 1)
    await js.publish(f"events.notification.y{tag}.Broken", b'{"type": "X"}')
    card = await create_customer(nc)
    await wait_entries(nc, card["id"], 1)

    async def parked() -> dict[str, DeadLetter] | None:
        letters = {d.original_subject: d for d in await dead_letters(js) if tag in d.original_subject}
        return letters if len(letters) >= 2 else None

    letters = await wait_for(parked, timeout=10, message="both malformed events dead-lettered")
    assert letters[f"events.notification.x{tag}.Broken"].data == b"{not json"
    assert letters[f"events.notification.y{tag}.Broken"].data == b'{"type": "X"}'
    assert all(d.error and d.original_stream == "NOTIFICATION_EVENTS" for d in letters.values())



async def test_alert_firings_are_in_the_customer_timeline(nc: NatsClient) -> None:
    from shared.contracts.events import REGISTRY
    from shared.contracts.events.alerts import ALERT_CATEGORY, AlertFired

    card = await create_customer(nc)
    cid = card["id"]
    fired = AlertFired(
        firing_id=str(uuid.uuid4()), alert_id=str(uuid.uuid4()), alert_name="ASR low", customer_id=cid,
        area="asr", operator="lt", value="20", threshold="30", level="error",
        actions=["email_contacts", "penalty"], reason="alert ASR low: asr 20 lt 30",
        event_at="2026-12-06T12:00:00+00:00")
    event = REGISTRY.envelope(fired, category=ALERT_CATEGORY, stream_id=cid, version=1,
                              metadata=Metadata(reason=fired.reason))
    await nc.jetstream().publish(event.subject, event.model_dump_json().encode())
    items = await wait_entries(nc, cid, 2)
    alert = next(i for i in items if i["type"] == "AlertFired")
    assert alert["action"] == "alert fired" and alert["actor"]["kind"] == "system"
    assert alert["reason"] == "alert ASR low: asr 20 lt 30" and alert["data"]["value"] == "20"
