"""A rebuild whose replay is split over two processes equals the live projection, duplicates included."""

from __future__ import annotations

import uuid

import pytest
from nats.aio.client import Client as NatsClient
from reporting.bootstrap import ReportingService, all_projections
from reporting.projections import rebuild
from reporting.projections.rebuild import Rebuilder
from reporting.projections.split import Connect
from reporting.settings import ReportingSettings
from shared.envelope import Actor, EventEnvelope, Metadata

from .test_rebuild import quiesce, snapshot, workload

pytestmark = pytest.mark.servers


def verification(customer_id: str, event_id: uuid.UUID | None = None, channel: str = "email") -> bytes:
    event = EventEnvelope(type="VerificationSucceeded", category="verification", stream_id=uuid.uuid4().hex,
                          version=1, metadata=Metadata(actor=Actor()), event_id=event_id or uuid.uuid4(),
                          data={"customer_id": customer_id, "channel": channel})
    return event.model_dump_json().encode()


async def test_a_rebuild_split_over_two_processes_equals_the_live_projection(
    nc: NatsClient, reporting: ReportingService, reporting_settings: ReportingSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customers: list[str] = []
    await workload(nc, 30, customers)
    js = nc.jetstream()
    # one event id twice, once in each half of its stream (and told apart by its data): the rebuild
    # keeps the first, as live does, whichever process writes first
    twice = uuid.uuid4()
    await js.publish("events.verification.x.VerificationSucceeded", verification(customers[0], twice))
    for _ in range(10):
        await js.publish("events.verification.x.VerificationSucceeded", verification(customers[1]))
    await js.publish("events.verification.x.VerificationSucceeded", verification(customers[0], twice, "sms"))
    await js.publish("events.verification.x.VerificationSucceeded", verification(customers[2]))
    await quiesce(nc)
    live = await snapshot(reporting)
    [row] = [r for r in live["audit_log"] if r[0] == str(twice)]
    assert '"email"' in " ".join(row)
    monkeypatch.setattr(rebuild, "SPLIT_MIN", 1)  # every stream with a message is split
    split = Connect(reporting_settings.nats_url, reporting_settings.database_url, {"search_path": "reporting"})
    for projection in all_projections():
        rebuilder = Rebuilder(reporting.pool, js, projection, batch=4, split=split)
        result = await rebuilder.run()
        assert rebuilder.done == rebuilder.total == result.events
        assert (rebuilder._worker is not None) == projection.bulk_split  # audit's replay was split
    assert await snapshot(reporting) == live
