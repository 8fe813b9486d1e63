"""Dial permission from memory: every customer's verdict, kept current from events.

Each replica holds a small view per customer. It starts from the read model (`customers`
rows) and stays current three ways: its own commits update it at once (the state cache's
`on_put`); an ordered JetStream consumer on CUSTOMER_EVENTS (subscribed before the initial
load, so nothing falls between) marks customers that another replica changed, which are then
re-read from the read model in batches; a reconnect to NATS reloads everything. Versions only
go forward, so the three never undo each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps(str) writes
from typing import Any

import asyncpg
import orjson
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import EventStore
from shared.rpc import error_bytes

from customer.application.state_cache import StateCache
from customer.domain.state import CustomerState

log = structlog.get_logger(__name__)

NOT_FOUND = b'{"allowed":false,"reasons":["not_found"],"limits":null,"penalty_until":null}'
BAD_REQUEST = error_bytes(ServiceError(
    ErrorCode.VALIDATION, "send {\"customer_id\": \"<uuid>\", \"cli\": \"+E164\" (optional)}"
))


@dataclass(frozen=True, slots=True)
class DialView:
    """What dial permission needs of one customer."""

    version: int
    before: tuple[str, ...]  # deleted, inactive, pending_approval
    after: tuple[str, ...]  # email_unverified, mobile_unverified
    penalty_until: float | None
    penalty_json: str
    clis_only: bool
    approved: frozenset[str]
    limits: str
    plain: bytes  # the answer when no penalty runs and the CLI does not matter


def make_view(
    fields: Mapping[str, Any], deleted: bool, contacts: Sequence[Mapping[str, Any]],
    approved: Iterable[str], version: int,
) -> DialView:
    """The view of one customer from its card fields, contacts and approved CLIs."""
    status = fields["status"]
    before = [r for r, on in (("deleted", deleted), ("inactive", status == "inactive"),
                              ("pending_approval", status == "pending_approval")) if on]
    verification = fields.get("verification") or {}
    after = []
    # a requirement is met when at least one contact has verified (see docs/verification.md)
    if verification.get("email_required") and not any(c["email_verified"] for c in contacts):
        after.append("email_unverified")
    if verification.get("mobile_required") and not any(c["mobile_verified"] for c in contacts):
        after.append("mobile_unverified")
    until = fields.get("penalty_until") if status == "penalty" else None
    # what json.dumps({...}, separators=(",", ":")) writes, without its encoder's set-up
    channels = fields["channels"]
    limits = (
        f'{{"channels":{channels if type(channels) is int else json.dumps(channels)},'
        f'"cps":{_json_str(str(fields["cps"]))},'
        f'"debit_limit":{_json_str(str(fields["debit_limit"]))}}}'
    )
    penalty_json = "null" if until is None else json.dumps(until)
    return DialView(
        version=version, before=tuple(before), after=tuple(after),
        penalty_until=datetime.fromisoformat(until).timestamp() if until else None,
        penalty_json=penalty_json, clis_only=bool(verification.get("approved_clis_only")),
        approved=frozenset(approved), limits=limits,
        plain=_answer(limits, penalty_json, (*before, *after), penalty=False),
    )


def _render(view: DialView, reasons: list[str], *, penalty: bool) -> bytes:
    return _answer(view.limits, view.penalty_json, tuple(reasons), penalty=penalty)


def _answer(limits: str, penalty_json: str, reasons: tuple[str, ...], *, penalty: bool) -> bytes:
    return (
        f'{{"allowed":{"false" if reasons else "true"},"reasons":{_reasons_json(reasons)},'
        f'"limits":{limits},"penalty_until":{penalty_json if penalty else "null"}}}'
    ).encode()


@functools.lru_cache(maxsize=256)
def _reasons_json(reasons: tuple[str, ...]) -> str:
    # a handful of fixed reason lists: each is encoded once
    return json.dumps(list(reasons))


def dial_inputs(state: CustomerState) -> tuple[Any, ...]:
    """What a customer's dial view is made of: states equal in these have equal views."""
    f = state.fields
    return (
        f["status"], f.get("verification"), f.get("penalty_until"), f["channels"], f["cps"],
        f["debit_limit"], state.deleted, state.contacts, state.approved_clis,
    )


def normalize_cli(cli: str) -> str:
    """`+1 415 555 0123` or `14155550123` -> `+14155550123`."""
    digits = "".join(ch for ch in cli if ch.isdigit())
    return "+" + digits


class DialIndex:
    """The views of every customer, and the answer to one dial-permission request."""

    def __init__(self) -> None:
        self.views: dict[str, DialView] = {}
        self.answered = 0

    def put(self, customer_id: str, view: DialView) -> None:
        """Keep a view unless a newer one is already here."""
        current = self.views.get(customer_id)
        if current is None or view.version >= current.version:
            self.views[customer_id] = view

    def apply_state(self, customer_id: str, state: CustomerState | None) -> None:
        """A state this process just committed (or loaded)."""
        if state is not None:
            self.put(customer_id, make_view(state.fields, state.deleted, state.contacts,
                                            state.approved_clis, state.version))

    def apply_card(self, card: Mapping[str, Any], deleted: bool) -> None:
        """A card read from the read model."""
        self.put(str(card["id"]), make_view(card, deleted, card.get("contacts", []),
                                            card.get("approved_clis", []), int(card["version"])))

    def answer(self, customer_id: str, cli: str | None, now: float) -> bytes:
        """The JSON answer for one customer (and CLI) at a time."""
        self.answered += 1
        view = self.views.get(customer_id)
        if view is None:
            return NOT_FOUND
        penalty = view.penalty_until is not None and view.penalty_until > now
        cli_refused = view.clis_only and (cli is None or normalize_cli(cli) not in view.approved)
        if not penalty and not cli_refused:
            return view.plain
        reasons = [*view.before, *(["penalty"] if penalty else []), *view.after,
                   *(["cli_not_approved"] if cli_refused else [])]
        return _render(view, reasons, penalty=penalty)

    def answer_request(self, data: bytes, now: float) -> bytes:
        """Parse a request (`{customer_id, cli?}`) and answer it; a malformed one gets an error."""
        try:
            body = orjson.loads(data)
            customer_id = body["customer_id"]
            cli = body.get("cli")
            if not isinstance(customer_id, str) or not (cli is None or isinstance(cli, str)):
                return BAD_REQUEST
        except (ValueError, KeyError, TypeError, AttributeError):
            return BAD_REQUEST
        if customer_id not in self.views:
            try:
                customer_id = str(uuid.UUID(customer_id))
            except ValueError:
                return BAD_REQUEST
        return self.answer(customer_id, cli, now)


class IndexedStateCache(StateCache):
    """The command core's state cache, also feeding every committed (or loaded) state to the index."""

    def __init__(self, store: EventStore, index: DialIndex, max_entries: int = 50_000) -> None:
        super().__init__(store, max_entries)
        self.index = index

    def put(self, stream_id: str, state: CustomerState | None) -> None:
        """Remember the state, and update the customer's dial view.

        A change that leaves the view's inputs as they were (notes, name, tags...) moves the
        view's version on instead of building it again.
        """
        previous = self._states.get(stream_id)
        super().put(stream_id, state)
        if state is None:
            return
        view = self.index.views.get(stream_id)
        if (
            previous is not None and view is not None and view.version == previous.version
            and state.version > previous.version and dial_inputs(previous) == dial_inputs(state)
        ):
            self.index.put(stream_id, replace(view, version=state.version))
        else:
            self.index.apply_state(stream_id, state)


class DialFeed:
    """Keeps a DialIndex current from the read model and CUSTOMER_EVENTS; serves the subject."""

    def __init__(
        self, index: DialIndex, pool: asyncpg.Pool, nc: NatsClient, *, subject: str, queue: str
    ) -> None:
        self.index = index
        self.pool = pool
        self.nc = nc
        self.subject = subject
        self.queue = queue
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        """Subscribe to events, load every customer, then answer requests."""
        js = self.nc.jetstream()
        self._subs.append(await js.subscribe(
            "events.customer.>", cb=self._on_event, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW, idle_heartbeat=5.0, flow_control=True,
        ))
        await self.reload_all()
        self._subs.append(await self.nc.subscribe(self.subject, queue=self.queue, cb=self._on_request))
        await self.nc.flush()

    async def stop(self) -> None:
        """Stop answering and following events."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def reload_all(self) -> None:
        """Read every customer from the read model."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor("SELECT card::text AS card, deleted FROM customers", prefetch=2000):
                self.index.apply_card(orjson.loads(row["card"]), row["deleted"])
        log.info("dial_index_loaded", customers=len(self.index.views),
                 seconds=round(time.perf_counter() - started, 3))

    async def run(self) -> None:
        """Re-read customers that other replicas changed, in batches, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._dirty = list(self._dirty), set()
            try:
                rows = await self.pool.fetch(
                    "SELECT card::text AS card, deleted FROM customers WHERE id = ANY($1::uuid[])", ids
                )
            except Exception as exc:
                log.warning("dial_index_refresh_failed", error=str(exc))
                self._dirty.update(ids)
                await asyncio.sleep(0.5)
                self._wake.set()
                continue
            for row in rows:
                self.index.apply_card(orjson.loads(row["card"]), row["deleted"])

    async def _on_event(self, msg: Msg) -> None:
        customer_id = msg.subject.split(".")[2]
        view = self.index.views.get(customer_id)
        if view is not None:
            try:
                if int(orjson.loads(msg.data)["version"]) <= view.version:
                    return  # this replica committed it (or already read it)
            except (ValueError, KeyError, TypeError):
                pass
        self._dirty.add(customer_id)
        self._wake.set()

    async def _on_request(self, msg: Msg) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, self.index.answer_request(msg.data, time.time()))
