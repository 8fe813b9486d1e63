"""Helpers for the alerts tests: customers with contacts, call records, rules."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient


async def call(nc: NatsClient, subject: str, payload: dict[str, Any], timeout: float = 10.0) -> Any:
    """One request; the JSON reply."""
    msg = await nc.request(subject, json.dumps(payload, default=str).encode(), timeout=timeout)
    return json.loads(msg.data)


async def customer_with_contact(nc: NatsClient, **card: Any) -> tuple[str, str]:
    """A new customer with one contact; (customer id, the contact's e-mail)."""
    name = f"Alerted {uuid.uuid4().hex[:8]}"
    created = await call(nc, "customer.cmd.create", {"customer": {"name": name, **card}})
    assert "error" not in created, created
    address = f"noc-{uuid.uuid4().hex[:8]}@customer.example"
    added = await call(nc, "customer.cmd.contact.add",
                       {"customer_id": created["id"], "contact": {"name": "Nora", "email": address}})
    assert "error" not in added, added
    return created["id"], address


def cdr(customer_id: str, *, answered: bool, at: datetime | None = None, charge: str = "0",
        duration_s: int = 60, pdd_ms: int = 800) -> dict[str, Any]:
    """A call record that ended at `at` (now by default)."""
    end = at or datetime.now(UTC)
    return {
        "call_id": uuid.uuid4().hex, "customer_id": customer_id,
        "started_at": (end - timedelta(seconds=duration_s + 5)).isoformat(),
        "answered_at": (end - timedelta(seconds=duration_s)).isoformat() if answered else None,
        "ended_at": end.isoformat(), "duration_s": duration_s if answered else 0,
        "billed_duration_s": duration_s if answered else 0, "charge": charge, "cost": "0",
        "disposition": "answered" if answered else "failed", "pdd_ms": pdd_ms,
    }


async def publish_calls(nc: NatsClient, records: list[dict[str, Any]]) -> None:
    """Publish call records to CALLS and wait for the stream's acks."""
    js = nc.jetstream()
    for r in records:
        await js.publish(f"calls.cdr.{r['customer_id']}", json.dumps(r).encode())


def asr_rule(name: str, customer_id: str, **over: Any) -> dict[str, Any]:
    """ASR below 30 over 10 minutes (30 attempts at least), re-arm above 31: e-mail and a penalty."""
    return {"name": name, "scope": {"customer_id": customer_id}, "area": "asr", "operator": "lt",
            "threshold": "30", "reset_threshold": "31", "window_minutes": 10, "min_attempts": 30,
            "actions": {"email_contacts": True, "penalty_minutes": 15}, "level": "error", **over}
