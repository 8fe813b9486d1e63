"""A rebuilt audit log equals the live one also for personal data, which stays encrypted in both."""

from __future__ import annotations

import uuid

import pytest
from nats.aio.client import Client as NatsClient
from reporting.bootstrap import ReportingService, all_projections
from reporting.projections.rebuild import Rebuilder
from shared.envelope import Actor, EventEnvelope, Metadata

from .conftest import call, create_customer
from .test_rebuild import quiesce, snapshot

pytestmark = pytest.mark.servers
OPERATOR = {"kind": "operator", "id": "tok-3", "name": "carol", "ip": "198.51.100.3"}


async def test_a_rebuild_of_encrypted_personal_data_equals_the_live_audit_log(
    nc: NatsClient, reporting: ReportingService
) -> None:
    emails = []
    for i in range(4):
        email = f"pay-{uuid.uuid4().hex[:8]}@example.org"
        emails.append(email)
        card = await create_customer(nc, paypal_email=email, address={
            "line1": f"{i} Private Road", "city": "Berlin", "postcode": "10115", "country": "DE"})
        cid = card["id"]
        new_email = f"new-{uuid.uuid4().hex[:8]}@example.org"
        emails.append(new_email)
        for body in ({"changes": {"paypal_email": new_email, "notes": f"moved {i}"}},
                     {"changes": {"address": {"line1": f"{i} Other Road", "country": "DE"}}}):
            reply = await call(nc, "customer.cmd.update", {"meta": {"actor": OPERATOR}, "customer_id": cid, **body})
            assert "error" not in reply, reply
        await call(nc, "customer.cmd.set-status", {"meta": {"actor": OPERATOR, "reason": "test"},
                                                   "customer_id": cid, "status": "inactive"})
    # an event of another stream whose data carries secrets the log must never keep
    event = EventEnvelope(type="VerificationSucceeded", category="verification", stream_id=uuid.uuid4().hex,
                          version=1, metadata=Metadata(actor=Actor()),
                          data={"customer_id": cid, "code": "123456", "channel": "email"})
    await nc.jetstream().publish(event.subject, event.model_dump_json().encode())
    await quiesce(nc)
    live = await snapshot(reporting)
    stored = "\n".join(" ".join(row) for row in live["audit_log"])
    assert "enc:v1:" in stored and "VerificationSucceeded" in stored and "123456" not in stored
    assert not any(email in stored for email in emails)  # ciphertext only, live as rebuilt
    js = nc.jetstream()
    for projection in all_projections():
        await Rebuilder(reporting.pool, js, projection).run()
    assert await snapshot(reporting) == live
