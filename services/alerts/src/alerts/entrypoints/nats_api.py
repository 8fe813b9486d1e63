"""The alerts service's request/reply subjects: one route table, served and documented."""

from __future__ import annotations

from typing import Any

import asyncpg
from shared.contracts.alerts import (
    AlertPage,
    AlertRef,
    AlertRule,
    AlertSubjects,
    CreateAlert,
    Deleted,
    FiringPage,
    ListAlerts,
    ListFirings,
    UpdateAlert,
)
from shared.rpc import Route

from alerts.application.firings import list_firings
from alerts.application.rules import RuleStore
from alerts.domain.rules import applies

QUEUE = "alerts"


def routes(store: RuleStore, pool: asyncpg.Pool) -> list[Route]:
    """Every subject of the alerts API with its models and handler."""

    async def create(body: CreateAlert) -> bytes:
        return (await store.create(body)).model_dump_json().encode()

    async def update(body: UpdateAlert) -> bytes:
        return (await store.update(body)).model_dump_json().encode()

    async def delete(body: AlertRef) -> bytes:
        await store.delete(body.alert_id, body.meta)
        return Deleted(id=body.alert_id).model_dump_json().encode()

    async def pause(body: AlertRef) -> bytes:
        return (await store.set_state(body.alert_id, "paused", body.meta)).model_dump_json().encode()

    async def resume(body: AlertRef) -> bytes:
        return (await store.set_state(body.alert_id, "ready", body.meta)).model_dump_json().encode()

    async def get(body: AlertRef) -> bytes:
        return (await store.get(body.alert_id)).model_dump_json().encode()

    async def list_(body: ListAlerts) -> bytes:
        rules = await store.list()
        if body.customer_id is not None:
            # the tag scope needs the customer's tags, which the evaluator keeps
            tags = await pool.fetchval("SELECT tags FROM customers WHERE customer_id = $1",
                                       str(body.customer_id)) or []
            rules = [r for r in rules if applies(r, str(body.customer_id), tuple(tags))]
        return AlertPage(items=rules).model_dump_json().encode()

    async def firings(body: ListFirings) -> bytes:
        return FiringPage(items=await list_firings(pool, body)).model_dump_json().encode()

    s = AlertSubjects
    return [
        Route(s.CREATE, CreateAlert, AlertRule, create,
              "Create a rule (name unique: name_taken). Validated: an asr threshold is 0-100, a window at"
              " least 1 minute, the area one of the known ones, a scope (all, customer_id or tag) required."),
        Route(s.UPDATE, UpdateAlert, AlertRule, update,
              "Replace a rule; a new version re-arms it for every customer."
              " expected_version: version_mismatch."),
        Route(s.DELETE, AlertRef, Deleted, delete, "Delete a rule (its firings stay)."),
        Route(s.PAUSE, AlertRef, AlertRule, pause, "Pause a rule: it is not evaluated until resumed."),
        Route(s.RESUME, AlertRef, AlertRule, resume, "Resume a paused rule."),
        Route(s.GET, AlertRef, AlertRule, get, "One rule."),
        Route(s.LIST, ListAlerts, AlertPage, list_,
              "Every rule by name; with customer_id, the rules that watch that customer."),
        Route(s.FIRINGS, ListFirings, FiringPage, firings,
              "Firings newest first, by customer_id, alert_id and since (UTC)."),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (handlers never called)."""
    unused: Any = None
    return routes(unused, unused)
