"""Alert rules over HTTP: CRUD, pause/resume, roles, validation (422), firings; the alerts service in-process."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
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


def _hidden(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form that posts to `action`."""
    for form in re.finditer(rf'<form method="post"[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S):
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))
    raise AssertionError(f"no form posts to {action}")


async def _console(gateway: Any, role: str) -> httpx.AsyncClient:
    """A signed-in console session (cookies) for a new token of the role."""
    token = await gateway.make_token(role)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False),
                            base_url="https://gateway.test")
    page = await web.get("/console/login")
    csrf = _hidden(page.text, "/console/login")["csrf_token"]
    reply = await web.post("/console/login", data={"token": token, "csrf_token": csrf, "next": "/console/"})
    assert reply.status_code == 303, reply.text
    return web


async def test_console_page_makes_refuses_and_pauses_rules(client: Any, gateway: Any) -> None:
    web = await _console(gateway, "operator")
    try:
        page = await web.get("/console/alerts")
        assert page.status_code == 200 and 'href="/console/alerts" aria-current="page"' in page.text
        csrf = _hidden(page.text, "/console/alerts")["csrf_token"]
        name = f"console rule {uuid.uuid4().hex[:6]}"
        form = {"csrf_token": csrf, "name": name, "scope_kind": "tag", "scope_value": "gold", "area": "asr",
                "operator": "lt", "threshold": "101", "window_minutes": "10", "level": "error",
                "email_contacts": "on", "penalty_minutes": "30"}
        refused = await web.post("/console/alerts", data=form)
        assert refused.status_code == 422 and "0 to 100" in refused.text
        assert f'value="{name}"' in refused.text  # the form keeps what was typed
        window = await web.post("/console/alerts", data={**form, "threshold": "20", "window_minutes": "0"})
        assert window.status_code == 422 and 'id="err-window_minutes"' in window.text
        made = await web.post("/console/alerts", data={**form, "threshold": "20"})
        assert made.status_code == 303 and made.headers["location"].endswith("notice=created")
        listed = (await web.get("/console/alerts")).text
        assert f'data-rule="{name}"' in listed and "tag <code>gold</code>" in listed
        assert "penalty 30 min" in listed
        [rule_id] = [r["id"] for r in (await client.get("/v1/alerts")).json()["items"] if r["name"] == name]
        paused = await web.post(f"/console/alerts/{rule_id}/pause", data={"csrf_token": csrf})
        assert paused.status_code == 303
        assert (await client.get(f"/v1/alerts/{rule_id}")).json()["state"] == "paused"
        edit = await web.get(f"/console/alerts/{rule_id}")
        assert edit.status_code == 200 and f"Change “{name}”" in edit.text
        version = _hidden(edit.text, f"/console/alerts/{rule_id}")["version"]
        assert version == "1"  # pausing is not a new version of the rule
        saved = await web.post(f"/console/alerts/{rule_id}", data={**form, "threshold": "25", "version": version})
        assert saved.status_code == 303, saved.text
        assert (await client.get(f"/v1/alerts/{rule_id}")).json()["threshold"] == "25"
    finally:
        await web.aclose()


async def test_console_alerts_are_not_for_viewers(client: Any, gateway: Any) -> None:
    web = await _console(gateway, "viewer")
    try:
        home = await web.get("/console/")
        assert 'href="/console/alerts"' not in home.text
        assert (await web.get("/console/alerts")).status_code == 403
    finally:
        await web.aclose()
