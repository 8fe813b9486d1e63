"""Alert rules over HTTP: CRUD, pause/resume, roles, validation (422), firings; the alerts service in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from alerts.bootstrap import AlertsSettings
from alerts.bootstrap import start as start_alerts
from devtools.testing.waiting import wait_for

pytestmark = pytest.mark.servers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(gateway: Any, module_nats_url: str, make_database: Any) -> AsyncIterator[Any]:
    alerts = await start_alerts(AlertsSettings(nats_url=module_nats_url, database_url=await make_database()))

    async def answers() -> bool:
        return (await gateway.client.get("/v1/alerts")).status_code == 200

    await wait_for(answers, timeout=10, message="the alerts service behind the gateway")
    yield gateway.client
    await asyncio.wait_for(alerts.stop(), 10)


def rule(**over: Any) -> dict[str, Any]:
    return {"name": f"low asr {uuid.uuid4().hex[:8]}", "scope": {"all": True}, "area": "asr", "operator": "lt",
            "threshold": 30, "reset_threshold": 31, "window_minutes": 10, "min_attempts": 30,
            "actions": {"email_operators": ["noc@carrier.example"]}, "level": "warning", **over}


async def test_crud_pause_resume_and_delete(client: Any) -> None:
    created = await client.post("/v1/alerts", json=rule())
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["Location"] == f"/v1/alerts/{body['id']}" and created.headers["ETag"] == '"1"'
    assert body["state"] == "ready" and body["threshold"] == "30" and body["reset_threshold"] == "31"

    again = await client.post("/v1/alerts", json=rule(name=body["name"].upper()))
    assert again.status_code == 409 and again.json()["error"]["code"] == "name_taken"

    listed = (await client.get("/v1/alerts")).json()["items"]
    assert body["id"] in [r["id"] for r in listed]

    put = await client.put(f"/v1/alerts/{body['id']}", json=rule(name=body["name"], threshold=25),
                           headers={"If-Match": '"1"'})
    assert put.status_code == 200 and put.json()["version"] == 2 and put.json()["threshold"] == "25"
    stale = await client.put(f"/v1/alerts/{body['id']}", json=rule(name=body["name"]), headers={"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text

    paused = await client.post(f"/v1/alerts/{body['id']}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    resumed = await client.post(f"/v1/alerts/{body['id']}/resume")
    assert resumed.json()["state"] == "ready"

    assert (await client.delete(f"/v1/alerts/{body['id']}")).status_code == 204
    assert (await client.get(f"/v1/alerts/{body['id']}")).status_code == 404
    assert (await client.delete(f"/v1/alerts/{body['id']}")).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"threshold": 101}, "threshold"),
    ({"reset_threshold": 150}, "reset_threshold"),
    ({"window_minutes": 0}, "window_minutes"),
    ({"area": "jitter"}, "area"),
    ({"scope": {}, "actions": {"penalty_minutes": 30}}, "penalty"),
    ({"scope": {"all": True, "tag": "gold"}}, "scope"),
    ({"operator": "eq"}, "operator"),
    ({"reset_threshold": 20}, "reset_threshold"),
    ({"actions": {"penalty_minutes": 10, "set_inactive": True}}, "set_inactive"),
    ({"min_attempts": -1}, "min_attempts"),
])
async def test_bad_rules_are_422_naming_the_problem(client: Any, change: dict[str, Any], field: str) -> None:
    reply = await client.post("/v1/alerts", json=rule(**change))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert field in reply.text, reply.text


async def test_roles_admin_and_operator_manage_viewer_and_billing_may_not(client: Any, gateway: Any) -> None:
    operator = gateway.as_token(await gateway.make_token("operator"))
    made = await client.post("/v1/alerts", json=rule(), headers=operator)
    assert made.status_code == 201, made.text
    for role in ("viewer", "billing"):
        headers = gateway.as_token(await gateway.make_token(role))
        assert (await client.get("/v1/alerts", headers=headers)).status_code == 403
        assert (await client.post("/v1/alerts", json=rule(), headers=headers)).status_code == 403


async def test_firings_answer_empty_and_check_their_query(client: Any) -> None:
    reply = await client.get("/v1/alerts/firings", params={"customer_id": str(uuid.uuid4()),
                                                           "since": "2026-01-01T00:00:00Z"})
    assert reply.status_code == 200 and reply.json() == {"items": []}
    assert (await client.get("/v1/alerts/firings", params={"customer_id": "nope"})).status_code == 422
