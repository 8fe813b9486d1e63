"""Dial permission over NATS: answers from the views in memory; follows CUSTOMER_EVENTS for them.

The events subscription comes first (an ordered JetStream consumer, new messages only), then
the initial load, then the request subscription: nothing changed between the load and the
first answer goes unseen. A request is `{customer_id, cli?, rate_per_minute?, connect_fee?}`;
the answer is the customer's verdict (projections/dial_views.py), bytes ready to send. Call
charges reach every replica's credit through LEDGER_CHANGED (projections/ledger.py).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence

import asyncpg
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from shared.envelope import EventEnvelope
from shared.errors import ErrorCode, ServiceError
from shared.rpc import error_bytes

from customer.domain.events import CUSTOMER_CATEGORY
from customer.projections.dial_views import DialViews, DialViewsReader
from customer.projections.ledger import LEDGER_CHANGED, Charges

BAD_REQUEST = error_bytes(ServiceError(
    ErrorCode.VALIDATION, "send {\"customer_id\": \"<uuid>\", \"cli\": \"+E164\" (optional),"
    " \"rate_per_minute\": \"0.02\" (optional), \"connect_fee\": \"0.01\" (optional)}"
))


def answer_request(views: DialViews, data: bytes, now: float) -> bytes:
    """Parse a request (`{customer_id, cli?}`) and answer it; a malformed one gets an error."""
    try:
        body = orjson.loads(data)
        customer_id = body["customer_id"]
        cli = body.get("cli")
        if not isinstance(customer_id, str) or not (cli is None or isinstance(cli, str)):
            return BAD_REQUEST
    except (ValueError, KeyError, TypeError, AttributeError):
        return BAD_REQUEST
    if customer_id not in views.by_customer:
        try:
            customer_id = str(uuid.UUID(customer_id))
        except ValueError:
            return BAD_REQUEST
    rate = body.get("rate_per_minute")
    if rate is None:
        return views.answer(customer_id, cli, now)
    try:
        return views.answer(customer_id, cli, now, rate, body.get("connect_fee"))
    except ValueError:
        return BAD_REQUEST


class DialPermissionApi:
    """Serves the dial-permission subject from the views, and keeps them current from events."""

    def __init__(
        self, views: DialViews, pool: asyncpg.Pool, nc: NatsClient, *, subject: str, queue: str
    ) -> None:
        self.views = views
        self.reader = DialViewsReader(views, pool)
        self.nc = nc
        self.subject = subject
        self.queue = queue
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        """Subscribe to events, load every customer, then answer requests."""
        # the events as they are published (core NATS, no consumer of its own: the customer
        # identity makes none on its stream, docs/adr/0016); a reconnect reloads everything.
        # The service's connection has no_echo: the events its own relay publishes come through
        # `published` instead
        self._subs.append(await self.nc.subscribe(
            "events.customer.>", cb=self._on_event, pending_msgs_limit=-1, pending_bytes_limit=-1,
        ))
        self._subs.append(await self.nc.subscribe(LEDGER_CHANGED, cb=self._on_charges))
        await self.reader.load_all()
        self._subs.append(await self.nc.subscribe(self.subject, queue=self.queue, cb=self._on_request))
        await self.nc.flush()

    async def stop(self) -> None:
        """Stop answering and following events."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def reload_all(self) -> None:
        """Read every customer again (after a reconnect: events may have passed meanwhile)."""
        await self.reader.load_all()

    async def run(self) -> None:
        """Re-read the customers other replicas changed, until cancelled."""
        await self.reader.run()

    async def _on_event(self, msg: Msg) -> None:
        customer_id = msg.subject.split(".")[2]
        try:
            version: int | None = int(orjson.loads(msg.data)["version"])
        except (ValueError, KeyError, TypeError):
            version = None
        self.reader.changed(customer_id, version)

    def published(self, events: Sequence[EventEnvelope]) -> None:
        """Events this process's relay published: its connection does not receive them (no_echo)."""
        for event in events:
            if event.category == CUSTOMER_CATEGORY:
                self.reader.changed(event.stream_id, event.version)

    async def _on_charges(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError, ArithmeticError):
            for charges in Charges.parse_many(msg.data):
                self.views.credit.set_charges(charges)

    async def _on_request(self, msg: Msg) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, answer_request(self.views, msg.data, time.time()))
