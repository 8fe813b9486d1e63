"""The evaluator: every message of a customer partition, in order, moves that customer's state and rules.

One batch is one transaction: the customers' state, the rule states, the firings, their pending
actions, their AlertFired events (message outbox) and the consumer's checkpoint are written
together, so a restart neither fires a crossing twice nor misses one (it reads on from the
checkpoint). Messages are judged one by one, at their own event time, so the same stream gives
the same firings however it is cut into batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg
import structlog
from nats.aio.msg import Msg
from shared.consumer import ConsumerSpec
from shared.contracts.alerts import CALL_AREAS
from shared.contracts.calls import CallRecord
from shared.envelope import EventEnvelope
from shared.streams import CALLS, CUSTOMER_EVENTS

from alerts.application.apply import apply_billing_event, apply_call, apply_customer_event
from alerts.application.firings import NewFiring, firing_of, write_firings
from alerts.application.rules import RuleBook
from alerts.application.state import CustomerState, load, save
from alerts.domain.partitions import partition_of
from alerts.domain.rules import RuleState, step, value_of
from alerts.domain.windows import Figures

log = structlog.get_logger(__name__)
NAMESPACE = uuid.UUID("8f3c2a61-0d7e-4b59-9a41-2c6e1f0b7d93")

_CALLS_KEY, _CUSTOMER_KEY = CALLS.partition_key, CUSTOMER_EVENTS.partition_key
CALLS_SPEC = ConsumerSpec(stream="CALLS", durable="alerts-calls", filter_subjects=["calls.cdr.*"])
CUSTOMER_SPEC = ConsumerSpec(stream="CUSTOMER_EVENTS", durable="alerts-customers",
                             filter_subjects=["events.customer.*.*"])
# invoices are not partitioned on BILLING_EVENTS: one durable (partition 0's replica) reads them all
BILLING_SPEC = ConsumerSpec(stream="BILLING_EVENTS", durable="alerts-billing",
                            filter_subjects=["events.billing.*.*"])


class Evaluator:
    """Batch handlers for the partitioned consumers; the state of the partitions it reads, in memory."""

    def __init__(
        self, pool: asyncpg.Pool, book: RuleBook, on_fired: Callable[[], None] | None = None
    ) -> None:
        self.pool = pool
        self.book = book
        self.on_fired = on_fired or (lambda: None)
        self.states: dict[int, dict[str, CustomerState]] = {}
        self.generations: dict[int, int] = {}
        self.locks: dict[int, asyncio.Lock] = {}
        self.fired = 0
        self.evaluated = 0
        # seconds from a message's arrival in its stream to its batch's commit (recent ones)
        self.lags: deque[float] = deque(maxlen=200_000)
        self._ids: dict[str, bool] = {}  # customer token -> is a customer id

    async def handle_calls(self, msgs: Sequence[Msg]) -> None:
        """A batch of call records."""
        await self._batch(msgs, "calls")

    async def handle_customers(self, msgs: Sequence[Msg]) -> None:
        """A batch of customer events (card, ledger)."""
        await self._batch(msgs, "customers")

    async def handle_billing(self, msgs: Sequence[Msg]) -> None:
        """A batch of billing events (invoices)."""
        await self._batch(msgs, "billing")

    async def _batch(self, msgs: Sequence[Msg], kind: str) -> None:
        if not msgs:  # a fetch may answer an empty batch
            return
        parts = sorted({self._partition_of(m, kind) for m in msgs})
        async with contextlib.AsyncExitStack() as held:
            for p in parts:  # always in the same order: no two batches wait for each other
                await held.enter_async_context(self.locks.setdefault(p, asyncio.Lock()))
            try:
                await self._in_transaction(msgs, kind, parts)
            except Exception as exc:
                log.warning("alerts_batch_failed", kind=kind, messages=len(msgs), error=repr(exc))
                for p in parts:
                    self.states.pop(p, None)
                    self.generations.pop(p, None)
                raise
            except BaseException:
                for p in parts:  # memory went ahead of a rolled back transaction
                    self.states.pop(p, None)
                    self.generations.pop(p, None)
                raise

    @staticmethod
    def _partition_of(msg: Msg, kind: str) -> int:
        """The customer partition: the stored subject's token, or (billing events) computed alike."""
        if kind == "billing":
            return partition_of(_customer_of(msg))
        _, partition = _split(msg.subject)
        return partition_of(_customer_of(msg)) if partition is None else partition

    async def _generations(self, conn: asyncpg.Connection, parts: list[int]) -> dict[int, int]:
        """Bump each partition's generation; forget a partition another process wrote meanwhile."""
        rows = await conn.fetch(
            "INSERT INTO partition_generations AS g (partition, generation)"
            " SELECT p, 1 FROM unnest($1::int[]) p"
            " ON CONFLICT (partition) DO UPDATE SET generation = g.generation + 1"
            " RETURNING partition, generation", parts)
        now = {r["partition"]: r["generation"] for r in rows}
        for p, generation in now.items():
            if self.generations.get(p) != generation - 1:
                self.states.pop(p, None)
        return now

    async def _in_transaction(self, msgs: Sequence[Msg], kind: str, parts: list[int]) -> None:
        consumer = msgs[0].metadata.consumer or kind
        async with self.pool.acquire() as conn, conn.transaction():
            await self.book.refresh(conn)
            generations = await self._generations(conn, parts)
            done = await conn.fetchval("SELECT last_seq FROM checkpoints WHERE consumer = $1", consumer) or 0
            fresh = [m for m in msgs if m.metadata.sequence.stream > done]
            touched: dict[str, CustomerState] = {}
            firings: list[NewFiring] = []
            if fresh:
                states = await self._states(conn, fresh, kind)
                for msg in fresh:
                    s = states[_customer_of(msg)]
                    at = self._apply(s, msg, kind)
                    touched[s.customer_id] = s
                    if at is not None:
                        firings += self._evaluate(s, at, msg)
                await save(conn, list(touched.values()))
                await write_firings(conn, firings)
                await conn.execute(
                    "INSERT INTO checkpoints (consumer, last_seq) VALUES ($1, $2)"
                    " ON CONFLICT (consumer) DO UPDATE SET last_seq = excluded.last_seq",
                    consumer, fresh[-1].metadata.sequence.stream)
        self.generations.update(generations)
        self._note(fresh, firings)

    async def _states(
        self, conn: asyncpg.Connection, fresh: Sequence[Msg], kind: str
    ) -> dict[str, CustomerState]:
        """The states of the batch's customers, from memory or the tables."""
        out: dict[str, CustomerState] = {}
        wanted: dict[int, set[str]] = {}
        for m in fresh:
            wanted.setdefault(self._partition_of(m, kind), set()).add(_customer_of(m))
        for p, ids in wanted.items():
            states = self.states.setdefault(p, {})
            missing = sorted(ids - states.keys())
            if missing:
                states.update(await load(conn, missing))
            out.update({cid: states[cid] for cid in ids})
        return out

    def _note(self, fresh: Sequence[Msg], firings: list[NewFiring]) -> None:
        now = time.time()
        for m in fresh:
            stamp = m.metadata.timestamp
            if stamp is not None:
                self.lags.append(now - stamp.timestamp())
        self.evaluated += len(fresh)
        if firings:
            self.fired += len(firings)
            log.info("alerts_fired", count=len(firings),
                     rules=sorted({f.rule_name for f in firings}))
            self.on_fired()

    def _judged(self, customer_id: str) -> bool:
        known = self._ids.get(customer_id)
        if known is None:
            if len(self._ids) > 1_000_000:
                self._ids.clear()
            known = self._ids[customer_id] = is_uuid(customer_id)
        return known

    @staticmethod
    def _apply(s: CustomerState, msg: Msg, kind: str) -> datetime | None:
        """Apply one message; its event time when rules should be judged, else None."""
        if kind == "calls":
            return apply_call(s, CallRecord.model_validate_json(msg.data))
        event = EventEnvelope.model_validate_json(msg.data)
        changed = apply_customer_event(s, event) if kind == "customers" else apply_billing_event(s, event)
        at = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
        return at if changed else None

    def _evaluate(self, s: CustomerState, at: datetime, msg: Msg) -> list[NewFiring]:
        if s.deleted or not self._judged(s.customer_id):
            return []
        out: list[NewFiring] = []
        money = None
        rules = self.book.for_customer(s.customer_id, s.tags)
        windows = [r.window_minutes for r in rules if r.area in CALL_AREAS]
        sums: dict[int, Figures] = s.window.figures_for(windows) if windows else {}
        for rule in rules:
            if money is None and rule.area not in CALL_AREAS:
                if not s.name:  # its card not read yet: no tax, debit limit or payments to judge money by
                    continue
                money = s.money()
            value = value_of(rule, s.window, money, sums)  # type: ignore[arg-type]
            if value is None:
                continue
            state = s.rules.get(rule.id)
            if state is None or state.rule_version != rule.version:
                state = s.rules[rule.id] = RuleState(rule.version)
                s.dirty_rules.add(rule.id)
            before = (state.armed, state.last_fired_at)
            if step(rule, state, value, at):
                seq = msg.metadata.sequence.stream
                fid = uuid.uuid5(NAMESPACE, f"{rule.id}:{s.customer_id}:{msg.metadata.stream}:{seq}")
                s.firings += 1
                s.spent = True  # the firing count is written with the narrow row too
                out.append(firing_of(fid, rule, s, value, at))
            if (state.armed, state.last_fired_at) != before:
                s.dirty_rules.add(rule.id)
        return out


def is_uuid(text: str) -> bool:
    """Whether a customer token is a customer id (the switch may send anything)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _split(stored: str) -> tuple[str, int | None]:
    """A stored subject's published subject and partition token (the stream's layout, ADR 0026)."""
    key = _CALLS_KEY if stored.startswith("calls.") else _CUSTOMER_KEY
    return key.split(stored) if key is not None else (stored, None)


def _customer_of(msg: Msg) -> str:
    """The customer token: `calls.cdr.<id>`, `events.customer.<id>.<Type>`, `events.billing.<id>.<Type>`
    as published (stored with a partition token before the id, or after the type)."""
    return _split(msg.subject)[0].split(".")[2]
