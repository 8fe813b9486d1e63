"""ASR falls: one e-mail, one penalty of the configured length; back above the reset re-arms; a second fall fires."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alerts_testkit import asr_rule, call, cdr, customer_with_contact, publish_calls
from devtools.testing.waiting import holds_for, wait_for
from nats.aio.client import Client as NatsClient
from notifier_testkit import SmtpServer

pytestmark = pytest.mark.servers


def alert_mails(smtp: SmtpServer, address: str) -> list:
    """The alert e-mails one address got (not its portal password)."""
    return [m for m in smtp.inbox.to(address) if m.subject.startswith("Alert for")]


async def firings(nc: NatsClient, customer_id: str) -> list[dict]:
    reply = await call(nc, "alerts.query.firings", {"customer_id": customer_id})
    assert "error" not in reply, reply
    return reply["items"]


async def test_asr_fall_mails_once_and_penalizes_then_rearms_and_fires_again(
    stack: NatsClient, smtp: SmtpServer
) -> None:
    nc = stack
    cid, address = await customer_with_contact(nc)
    rule = await call(nc, "alerts.cmd.create", {"rule": asr_rule(f"ASR low {uuid.uuid4().hex[:6]}", cid)})
    assert "error" not in rule, rule

    # 30 attempts in the last 10 minutes, 6 answered: ASR 20 %
    now = datetime.now(UTC)
    calls = [cdr(cid, answered=i < 6, at=now - timedelta(seconds=60 - i)) for i in range(30)]
    published_at = datetime.now(UTC)
    await publish_calls(nc, calls)

    fired = await wait_for(lambda: firings(nc, cid), timeout=5, message="a firing within 5 s")
    assert len(fired) == 1, fired
    f = fired[0]
    assert f["area"] == "asr" and float(f["value"]) == 20.0 and f["threshold"] == "30", f
    assert f["actions"] == ["email_contacts", "penalty"], f

    card = await wait_for(lambda: _penalized(nc, cid), timeout=10, message="the penalty")
    until = datetime.fromisoformat(card["penalty_until"])
    assert timedelta(minutes=14, seconds=50) < until - published_at < timedelta(minutes=15, seconds=30), until

    mails = await wait_for(lambda: alert_mails(smtp, address), timeout=20, message="the alert e-mail")
    assert len(mails) == 1
    assert rule["name"] in mails[0].body and "20" in mails[0].body and "30" in mails[0].body
    assert card["name"] in mails[0].subject, mails[0].subject

    audit = await wait_for(lambda: _status_events(nc, cid), timeout=10, message="the status change's event")
    assert audit, audit

    # more failures while still crossed: no second firing, no second e-mail (no repeat_minutes)
    await publish_calls(nc, [cdr(cid, answered=False) for _ in range(5)])
    await holds_for(lambda: len(alert_mails(smtp, address)) == 1, 2.0, "still below: no new firing")
    assert len(await firings(nc, cid)) == 1

    # ASR back above 31 re-arms (no firing), then a second fall fires again
    await publish_calls(nc, [cdr(cid, answered=True) for _ in range(40)])  # 46 of 75: 61 %
    await holds_for(lambda: len(alert_mails(smtp, address)) == 1, 1.0, "re-arming sends nothing")
    await publish_calls(nc, [cdr(cid, answered=False) for _ in range(90)])  # 46 of 165: 27.9 %
    again = await wait_for(lambda: _at_least(nc, cid, 2), timeout=5, message="the second firing")
    assert len(again) == 2, again
    await wait_for(lambda: len(alert_mails(smtp, address)) == 2, timeout=20, message="the second e-mail")
    await holds_for(lambda: len(alert_mails(smtp, address)) == 2, 1.0, "exactly two e-mails")


async def _at_least(nc: NatsClient, cid: str, n: int) -> list[dict] | None:
    items = await firings(nc, cid)
    return items if len(items) >= n else None


async def _penalized(nc: NatsClient, cid: str) -> dict | None:
    card = await call(nc, "customer.query.get", {"customer_id": cid})
    return card if card.get("status") == "penalty" else None


async def _status_events(nc: NatsClient, cid: str) -> list[dict]:
    """The customer's CustomerStatusChanged events, with the alert's reason (read from the stream)."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"events.customer.{cid}.CustomerStatusChanged.*", stream="CUSTOMER_EVENTS")
    try:
        msgs = await sub.fetch(10, timeout=1)
    except Exception:
        return []
    finally:
        await sub.unsubscribe()
    import json

    events = [json.loads(m.data) for m in msgs]
    return [e for e in events if (e["metadata"].get("reason") or "").startswith("alert ASR low")
            and e["metadata"]["actor"]["kind"] == "system" and e["data"]["new"] == "penalty"]
