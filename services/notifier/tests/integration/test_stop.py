"""A notifier stopped while its delivery workers are busy: every worker has ended when the stop
returns (before the pool closes), and none logs a failure (`pool is closed`) afterwards."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier.bootstrap import NotifierService, NotifierSettings, start
from notifier_testkit import FakeCustomers, SmtpServer, call, card, contact, use_smtp
from shared.secrets import Sealer
from structlog.testing import capture_logs

pytestmark = pytest.mark.servers

RECIPIENTS = 400
QUIET_AFTER_S = 1.5  # a worker left running fails its next round (1 s apart) once the pool is closed
FAILURES = {"delivery_worker_failed", "delivery_workers_not_stopped", "tasks_not_stopped",
            "task_failed_before_stop", "delivery_record_retrying"}


async def notifier(nats_url: str, make_database: Any, tmp_path: Path) -> NotifierService:
    """A notifier of this test's own (its stop is the subject), eight busy e-mail workers (each stop a chance of a cancel dropped by `wait_for`)."""
    return await start(NotifierSettings(
        nats_url=nats_url, database_url=await make_database(), secret_key=Sealer.new_key(),
        journal_dir=tmp_path / "journal", email_workers=8, delivery_batch=5, idle_poll_s=0.05,
        allow_insecure_providers=True,
    ))


async def answers(nats: NatsClient) -> bool:
    """Whether a notifier answers requests yet."""
    try:
        await nats.request("notifier.query.settings.email", b"{}", timeout=0.5)
        return True
    except Exception:
        return False


def workers_left() -> list[str]:
    """Delivery worker tasks of this process still running."""
    return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("deliver-") and not t.done())


@pytest.mark.parametrize("after_sent", [20, 60, 120, 200])
async def test_a_stop_under_load_ends_every_worker_before_the_pool_closes(
    nats: NatsClient, nats_url: str, make_database: Any, tmp_path: Path, customers: FakeCustomers,
    smtp: SmtpServer, after_sent: int,
) -> None:
    svc = await notifier(nats_url, make_database, tmp_path)
    stopped = False
    try:
        await wait_for(lambda: answers(nats), timeout=10, message="the notifier to answer")
        await use_smtp(nats, smtp.port)
        tag = uuid.uuid4().hex[:8]
        cards = customers.add(*[card(f"Stop {i}", [contact("R", f"r{i}-{tag}@stop.example")])
                                for i in range(RECIPIENTS)])
        reply = await call(nats, "notifier.cmd.send", {
            "channel": "email", "subject": "s", "body": "b", "customer_ids": [c["id"] for c in cards]})
        assert reply["recipients"] == RECIPIENTS, reply
        await wait_for(lambda: smtp.inbox.count() >= after_sent, timeout=30, message="sending under way")
        with capture_logs() as logs:
            await svc.stop()
            stopped = True
            left = workers_left()
            await asyncio.sleep(QUIET_AFTER_S)  # what a worker left running would log meanwhile
        assert left == [], left
        assert workers_left() == []
        failures = [e for e in logs if e["event"] in FAILURES or e.get("log_level") in ("error", "critical")]
        assert failures == [], failures
        assert smtp.inbox.count() < RECIPIENTS  # stopped under load, not after the work was done
    finally:
        if not stopped:
            await svc.stop()
