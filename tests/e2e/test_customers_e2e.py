"""`make run`'s stack over HTTP: a customer's life, its events read back from JetStream."""

from __future__ import annotations

import re
import uuid

import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy
from shared.envelope import EventEnvelope

from shared import bus

from .conftest import Stack


async def events_of(nats_url: str, customer_id: str) -> list[EventEnvelope]:
    nc = await bus.connect(nats_url, "provisioner")
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            f"events.customer.{customer_id}.>", ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        out = []
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except TimeoutError:
                return out
            out.append(EventEnvelope.model_validate_json(msg.data))
    finally:
        await nc.close()


async def test_a_customer_through_the_gateway_and_its_events_on_jetstream(stack: Stack) -> None:
    name = f"E2E Carrier {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=stack.http, headers=stack.headers, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        created = await http.post(
            "/v1/customers", json={"name": name, "currency": "EUR", "tags": ["e2e"]},
            headers={"Idempotency-Key": f"e2e-{name}"},
        )
        assert created.status_code == 201, created.text
        card = created.json()
        again = await http.post("/v1/customers", json={"name": name, "currency": "EUR", "tags": ["e2e"]},
                                headers={"Idempotency-Key": f"e2e-{name}"})
        assert again.json()["id"] == card["id"]
        duplicate = await http.post("/v1/customers", json={"name": name.upper()})
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "name_taken"

        patched = await http.patch(f"/v1/customers/{card['id']}", json={"channels": 30},
                                   headers={"If-Match": "1", "X-Audit-Reason": "upgrade"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == 2
        stale = await http.patch(f"/v1/customers/{card['id']}", json={"channels": 31},
                                 headers={"If-Match": "1"})
        assert stale.status_code == 412
        currency = await http.patch(f"/v1/customers/{card['id']}", json={"currency": "USD"})
        assert currency.status_code == 422 and currency.json()["error"]["code"] == "currency_immutable"

        board = await http.get("/v1/customers", params={"q": name.lower(), "tag": "e2e"})
        assert [c["id"] for c in board.json()["items"]] == [card["id"]]
        csv = await http.get("/v1/customers", params={"q": name}, headers={"Accept": "text/csv"})
        assert csv.status_code == 200 and name in csv.text

        assert (await http.delete(f"/v1/customers/{card['id']}")).status_code == 204

    events = await events_of(stack.nats_url, card["id"])
    assert [(e.version, e.type) for e in events] == [
        (1, "CustomerCreated"), (2, "CustomerUpdated"), (3, "CustomerDeleted"),
    ]
    update = events[1]
    assert update.data["changes"] == {"channels": {"old": 0, "new": 30}}
    assert update.metadata.actor.kind == "operator" and update.metadata.reason == "upgrade"
    assert update.metadata.actor.ip == "127.0.0.1"


async def test_every_service_serves_metrics_and_readiness(stack: Stack) -> None:
    text = "".join(stack.output)
    urls = dict(re.findall(r"metrics:\s+(\S+)\s+(\S+)", text))
    assert set(urls) == {"customer", "verification", "notifier", "reporting", "alerts", "gateway"}, text
    async with httpx.AsyncClient(timeout=10) as http:
        for service, url in urls.items():
            metrics = await http.get(url)
            assert metrics.status_code == 200, service
            ready = await http.get(url.replace("/metrics", "/readyz"))
            assert ready.status_code == 200 and ready.json()["ready"] is True, (service, ready.text)
        customer = (await http.get(urls["customer"])).text
        assert "patchbay_requests_total" in customer and 'subject="customer.cmd.create"' in customer
        gateway = (await http.get(urls["gateway"])).text
        assert 'patchbay_http_requests_total{method="POST",route="/v1/customers",status="201"}' in gateway
