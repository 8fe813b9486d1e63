"""Firings: the row, its pending actions and its AlertFired event, written in the batch's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from shared.contracts.alerts import AlertRule, Firing, ListFirings
from shared.contracts.events import REGISTRY
from shared.contracts.events.alerts import ALERT_CATEGORY, AlertFired
from shared.envelope import Metadata
from shared.message_outbox import OutboxMessage, insert_messages

from alerts.application.state import CustomerState
from alerts.domain.rules import reason_of, shown_value


@dataclass(frozen=True, slots=True)
class NewFiring:
    """A firing decided in a batch, with what it must do."""

    id: UUID
    rule_id: UUID
    rule_name: str
    customer_id: str
    customer_name: str
    area: str
    operator: str
    value: Decimal
    threshold: Decimal
    level: str
    actions: list[str]
    reason: str
    fired_at: datetime
    event_at: datetime
    version: int
    plan: dict[str, Any]  # the pending actions' body


def actions_of(rule: AlertRule) -> list[str]:
    """The names of what a rule's firing does."""
    a = rule.actions
    names = [n for n, on in (("email_contacts", a.email_contacts), ("sms_contacts", a.sms_contacts),
                             ("email_operators", bool(a.email_operators))) if on]
    if a.penalty_minutes is not None:
        names.append("penalty")
    if a.set_inactive:
        names.append("set_inactive")
    return names


def firing_of(fid: UUID, rule: AlertRule, s: CustomerState, value: Decimal, at: datetime) -> NewFiring:
    """A firing of `rule` for customer `s` at event time `at`."""
    now = datetime.now(UTC)
    reason = reason_of(rule, value)
    plan: dict[str, Any] = {
        "firing_id": str(fid), "customer_id": s.customer_id, "customer_name": s.name,
        "alert_name": rule.name, "area": rule.area, "operator": rule.operator, "level": rule.level,
        "value": shown_value(value), "threshold": shown_value(rule.threshold), "reason": reason,
        "currency": s.currency, "actions": rule.actions.model_dump(mode="json"),
    }
    if rule.actions.penalty_minutes is not None:
        # fixed now, so a retried action asks for the same penalty
        plan["penalty_until"] = (now + timedelta(minutes=rule.actions.penalty_minutes)).isoformat()
    return NewFiring(fid, rule.id, rule.name, s.customer_id, s.name, rule.area, rule.operator, value,
                     rule.threshold, rule.level, actions_of(rule), reason, now, at, s.firings, plan)


def _event(f: NewFiring) -> OutboxMessage:
    fired = AlertFired(
        firing_id=str(f.id), alert_id=str(f.rule_id), alert_name=f.rule_name, customer_id=f.customer_id,
        area=f.area, operator=f.operator, value=str(f.value), threshold=str(f.threshold), level=f.level,
        actions=f.actions, reason=f.reason, event_at=f.event_at.isoformat(),
    )
    envelope = REGISTRY.envelope(fired, category=ALERT_CATEGORY, stream_id=f.customer_id, version=f.version,
                                 occurred_at=f.fired_at, event_id=f.id,
                                 metadata=Metadata(reason=f.reason, causation_id=str(f.rule_id)))
    return OutboxMessage(envelope.subject, str(f.id), envelope.model_dump_json().encode())


async def write_firings(conn: asyncpg.Connection, firings: list[NewFiring]) -> None:
    """The firings, their pending actions and their events, in the caller's transaction."""
    if not firings:
        return
    await conn.executemany(
        "INSERT INTO firings (id, rule_id, rule_name, customer_id, area, operator, value, threshold, level,"
        " actions, reason, fired_at, event_at) VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11,"
        " $12, $13) ON CONFLICT (id) DO NOTHING",
        [(f.id, f.rule_id, f.rule_name, f.customer_id, f.area, f.operator, f.value, f.threshold, f.level,
          f.actions, f.reason, f.fired_at, f.event_at) for f in firings])
    acting = [f for f in firings if f.actions]
    if acting:
        await conn.executemany(
            "INSERT INTO pending_actions (firing_id, body) VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
            [(f.id, json.dumps(f.plan)) for f in acting])
    await insert_messages(conn, [_event(f) for f in firings])


COLUMNS = ("id, rule_id AS alert_id, rule_name AS alert_name, customer_id, area, operator, value, threshold,"
           " level, actions, reason, fired_at, event_at")


async def list_firings(pool: asyncpg.Pool, q: ListFirings) -> list[Firing]:
    """Firings, newest first, by customer, rule and time."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM firings WHERE ($1::uuid IS NULL OR customer_id = $1)"
        " AND ($2::uuid IS NULL OR rule_id = $2) AND ($3::timestamptz IS NULL OR fired_at >= $3)"
        " ORDER BY fired_at DESC, id LIMIT $4", q.customer_id, q.alert_id, q.since, q.limit)
    return [Firing.model_validate(dict(r)) for r in rows]
