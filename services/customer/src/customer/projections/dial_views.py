"""Dial permission's projection: every customer's verdict in memory, kept current from the read model.

Each replica holds a small view per customer, and its credit (application/credit.py: balance,
available credit, today's charges, from shared.money). It starts from the read model (`customers`
rows) and stays current three ways: its own commits update it at once (the command core's
state cache, application/state_cache.py); customers that another replica changed (told by the
entrypoint, entrypoints/dial_api.py, which follows CUSTOMER_EVENTS) are re-read from the read
model in batches; a reconnect to NATS reloads everything. Versions only go forward, so the
three never undo each other.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps(str) writes
from typing import Any

import asyncpg
import orjson
import structlog

from customer.application.credit import CreditBook
from customer.application.payments import PAYMENT_SUMS_SQL, totals_of
from customer.domain.payments import payment_totals
from customer.domain.state import CustomerState
from customer.projections.ledger import load_charges

log = structlog.get_logger(__name__)

NOT_FOUND = b'{"allowed":false,"reasons":["not_found"],"limits":null,"penalty_until":null,"credit":null}'


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
    plain: bytes  # the answer up to its credit, when no penalty runs and the CLI does not matter


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
    # without the closing brace: the credit (and max_duration_s) follow
    return (
        f'{{"allowed":{"false" if reasons else "true"},"reasons":{_reasons_json(reasons)},'
        f'"limits":{limits},"penalty_until":{penalty_json if penalty else "null"},"credit":'
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


class DialViews:
    """The view of every customer, and the answer to one customer's dial-permission question."""

    def __init__(self, credit: CreditBook | None = None) -> None:
        self.by_customer: dict[str, DialView] = {}
        self.credit = credit or CreditBook()
        self.answered = 0

    def put(self, customer_id: str, view: DialView) -> None:
        """Keep a view unless a newer one is already here."""
        current = self.by_customer.get(customer_id)
        if current is None or view.version >= current.version:
            self.by_customer[customer_id] = view

    def apply_state(self, customer_id: str, state: CustomerState | None) -> None:
        """A state this process just committed (or loaded)."""
        if state is not None:
            self.put(customer_id, make_view(state.fields, state.deleted, state.contacts,
                                            state.approved_clis, state.version))
            self.apply_credit(customer_id, state)

    def apply_credit(self, customer_id: str, state: CustomerState) -> None:
        """The card's part of a customer's credit, from a committed (or loaded) state."""
        self.credit.set_customer(customer_id, state.version, state.fields, payment_totals(state.payments))

    def apply_card(self, card: Mapping[str, Any], deleted: bool, sums: Any | None = None) -> None:
        """A card read from the read model (with its customer's completed payment sums)."""
        cid, version = str(card["id"]), int(card["version"])
        self.put(cid, make_view(card, deleted, card.get("contacts", []),
                                card.get("approved_clis", []), version))
        self.credit.set_customer(cid, version, dict(card), totals_of(sums, None))

    def answer(
        self, customer_id: str, cli: str | None, now: float, rate: Any = None, connect_fee: Any = None,
    ) -> bytes:
        """The JSON answer for one customer (and CLI) at a time; with a rate, also max_duration_s."""
        self.answered += 1
        view = self.by_customer.get(customer_id)
        if view is None:
            return NOT_FOUND
        day = int(now // 86400)
        credit = self.credit.credits.get(customer_id)
        verdict = credit.verdict if credit is not None else None
        if verdict is None or verdict[0] != day:
            verdict = self.credit.verdict(customer_id, day)
        refused, tail = verdict[1], verdict[3]
        if rate is not None:
            seconds = self.credit.max_duration(verdict[4], rate, connect_fee)
            tail = f'{verdict[2]},"max_duration_s":{seconds}}}'.encode()
        penalty = view.penalty_until is not None and view.penalty_until > now
        cli_refused = view.clis_only and (cli is None or normalize_cli(cli) not in view.approved)
        if not penalty and not cli_refused and not refused:
            return view.plain + tail
        reasons = [*view.before, *(["penalty"] if penalty else []), *view.after,
                   *(["cli_not_approved"] if cli_refused else []), *refused]
        return _render(view, reasons, penalty=penalty) + tail


class DialViewsReader:
    """Reads customers' cards from the read model into the views: all of them, or those changed."""

    def __init__(self, views: DialViews, pool: asyncpg.Pool) -> None:
        self.views = views
        self.pool = pool
        self._changed: set[str] = set()
        self._wake = asyncio.Event()

    async def load_all(self) -> None:
        """Read every customer from the read model."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            sums = {r["customer_id"]: dict(r) for r in await conn.fetch(PAYMENT_SUMS_SQL.format(where=""))}
            async for row in conn.cursor("SELECT id::text AS id, card::text AS card, deleted FROM customers",
                                         prefetch=2000):
                self.views.apply_card(orjson.loads(row["card"]), row["deleted"], sums.get(row["id"]))
        for charges in await load_charges(self.pool):
            self.views.credit.set_charges(charges)
        log.info("dial_index_loaded", customers=len(self.views.by_customer),
                 seconds=round(time.perf_counter() - started, 3))

    def changed(self, customer_id: str, version: int | None) -> None:
        """A customer reached `version` (None: unknown); read it again unless the view has it."""
        view = self.views.by_customer.get(customer_id)
        if view is not None and version is not None and version <= view.version:
            return  # this replica committed it (or already read it)
        self._changed.add(customer_id)
        self._wake.set()

    async def run(self) -> None:
        """Re-read customers that other replicas changed, in batches, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._changed = list(self._changed), set()
            try:
                async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                    rows = await conn.fetch(
                        "SELECT id::text AS id, card::text AS card, deleted FROM customers"
                        " WHERE id = ANY($1::uuid[])", ids)
                    sums = {r["customer_id"]: dict(r) for r in await conn.fetch(
                        PAYMENT_SUMS_SQL.format(where="AND customer_id = ANY($1::uuid[])"), ids)}
            except Exception as exc:
                log.warning("dial_index_refresh_failed", error=str(exc))
                self._changed.update(ids)
                await asyncio.sleep(0.5)
                self._wake.set()
                continue
            for row in rows:
                self.views.apply_card(orjson.loads(row["card"]), row["deleted"], sums.get(row["id"]))
