"""The actions of firings, taken once each: status changes by the system, messages through the notifier.

A firing's actions wait in `pending_actions` (written with the firing). The worker takes one row
at a time (`FOR UPDATE SKIP LOCKED`: replicas share the work), acts, and deletes it. Every action
carries a key made from the firing id, so a retry after a crash repeats nothing: the status change
is a customer command with `command_id = alert:<firing>:status` (the customer service answers a
repeated command from its idempotency table), each message a `notification_id` the notifier
delivers once, published with that id as `Nats-Msg-Id`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from shared.contracts.customer import Subjects as CustomerSubjects
from shared.contracts.notify import SystemMessage
from shared.envelope import SYSTEM
from shared.errors import ErrorCode

from alerts.domain.rules import OPERATOR_WORDS

log = structlog.get_logger(__name__)
GONE = (ErrorCode.NOT_FOUND, ErrorCode.DELETED)
NOT_PENALIZED = ("inactive", "pending_approval")  # a penalty would make them active when it ends


class Retry(Exception):
    """A service did not answer: try again later."""


class ActionWorker:
    """Takes pending actions until cancelled; `wake` when new firings were written."""

    def __init__(self, pool: asyncpg.Pool, nc: NatsClient, js: JetStreamContext, *,
                 timeout_s: float = 5.0, idle_s: float = 1.0) -> None:
        self.pool = pool
        self.nc = nc
        self.js = js
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self._wake = asyncio.Event()
        self.done = 0

    def wake(self) -> None:
        """New work was committed."""
        self._wake.set()

    async def run(self) -> None:
        """Work while there is work; otherwise wait to be woken (or poll)."""
        while True:
            try:
                worked = await self.take_one()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("alert_action_failed", error=str(exc))
                worked = False
            if not worked:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)
                except TimeoutError:
                    pass

    async def take_one(self) -> bool:
        """Act on one due firing; False when none is due."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT firing_id, body, attempts FROM pending_actions WHERE next_at <= now()"
                " ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED")
            if row is None:
                return False
            body = json.loads(row["body"])
            try:
                await self.act(body)
            except Retry as exc:
                delay = min(60.0, 0.5 * 2 ** row["attempts"])
                await conn.execute(
                    "UPDATE pending_actions SET attempts = attempts + 1, last_error = $2,"
                    " next_at = now() + make_interval(secs => $3) WHERE firing_id = $1",
                    row["firing_id"], str(exc), delay)
                log.warning("alert_action_retry", firing_id=body["firing_id"], error=str(exc), delay_s=delay)
                return True
            await conn.execute("DELETE FROM pending_actions WHERE firing_id = $1", row["firing_id"])
        self.done += 1
        return True

    async def _ask(self, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            data = json.dumps(payload, default=str).encode()
            msg = await self.nc.request(subject, data, timeout=self.timeout_s)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError) as exc:
            raise Retry(f"{subject}: {type(exc).__name__}") from None
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    async def act(self, body: dict[str, Any]) -> None:
        """Every action of one firing (each one idempotent)."""
        actions = body["actions"]
        cid = body["customer_id"]
        wants_card = actions["email_contacts"] or actions["sms_contacts"] or actions["penalty_minutes"] \
            or actions["set_inactive"]
        card: dict[str, Any] | None = None
        if wants_card:
            card = await self._ask(CustomerSubjects.GET, {"customer_id": cid})
            error = card.get("error")
            if error:
                if error.get("code") not in GONE:
                    raise Retry(f"customer.query.get: {error.get('code')}")
                log.info("alert_customer_gone", firing_id=body["firing_id"], customer_id=cid)
                card = None
        if card is not None:
            await self._status(body, card)
        await self._messages(body, card)

    async def _status(self, body: dict[str, Any], card: dict[str, Any]) -> None:
        actions = body["actions"]
        if actions["penalty_minutes"] is not None:
            if card.get("status") in NOT_PENALIZED:
                log.info("alert_penalty_skipped", firing_id=body["firing_id"], status=card.get("status"))
                return
            change = {"status": "penalty", "until": body["penalty_until"]}
        elif actions["set_inactive"]:
            change = {"status": "inactive"}
        else:
            return
        meta = {"command_id": f"alert:{body['firing_id']}:status", "actor": SYSTEM.model_dump(mode="json"),
                "reason": body["reason"]}
        request = {"meta": meta, "customer_id": body["customer_id"], **change}
        reply = await self._ask(CustomerSubjects.SET_STATUS, request)
        error = reply.get("error")
        if error and error.get("code") in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL):
            raise Retry(f"customer.cmd.set-status: {error.get('code')}")
        if error:  # a penalty whose time passed while the service was away, a transition refused
            log.warning("alert_status_refused", firing_id=body["firing_id"], error=error.get("message"))
            return
        log.info("alert_status_changed", firing_id=body["firing_id"], customer_id=body["customer_id"],
                 status=change["status"])

    def _variables(self, body: dict[str, Any], contact_name: str = "") -> dict[str, str]:
        return {
            "contact_name": contact_name, "customer_name": body.get("customer_name") or body["customer_id"],
            "alert_name": body["alert_name"], "area": body["area"], "value": body["value"],
            "threshold": body["threshold"], "direction": OPERATOR_WORDS[body["operator"]],
            "level": body["level"], "penalty_until": body.get("penalty_until") or "",
        }

    async def _messages(self, body: dict[str, Any], card: dict[str, Any] | None) -> None:
        actions = body["actions"]
        fid, cid = body["firing_id"], body["customer_id"]
        out: list[SystemMessage] = []
        if card is not None:
            name = card.get("name") or ""
            for c in card.get("contacts") or []:
                common = {"customer_id": cid, "contact_id": c.get("id"),
                          "variables": {**self._variables(body, c.get("name") or ""), "customer_name": name}}
                if actions["email_contacts"] and c.get("email"):
                    out.append(SystemMessage(notification_id=f"alert:{fid}:email:{c.get('id')}",
                                             channel="email", template="alert_customer", to=c["email"],
                                             **common))
                if actions["sms_contacts"] and c.get("mobile"):
                    out.append(SystemMessage(notification_id=f"alert:{fid}:sms:{c.get('id')}", channel="sms",
                                             template="alert_customer", to=c["mobile"], **common))
        for address in actions["email_operators"]:
            out.append(SystemMessage(notification_id=f"alert:{fid}:operator:{address.lower()}",
                                     channel="email", template="alert_operator", to=address, customer_id=cid,
                                     variables=self._variables(body)))
        for m in out:
            try:
                await self.js.publish(m.subject, m.model_dump_json().encode(),
                                      headers={"Nats-Msg-Id": m.notification_id}, timeout=self.timeout_s)
            except (nats.errors.TimeoutError, TimeoutError, nats.errors.NoRespondersError) as exc:
                raise Retry(f"NOTIFY: {type(exc).__name__}") from None
        if out:
            log.info("alert_messages_queued", firing_id=fid, count=len(out))
