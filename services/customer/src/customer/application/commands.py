"""Customer commands: load, decide, append; many concurrent commands share one statement.

Commands queue up by customer partition; each partition's worker takes whatever has arrived (up
to `max_batch`), decides each against the states in memory, and appends all their events,
read-model rows and replies in one statement (one round trip, one commit). With one partition
(the default), commands that arrive during a commit make the next batch larger, which costs less
CPU per command (docs/performance.md; more `partitions` overlap commits, at more CPU). One
customer's commands stay in order in one worker. If the statement fails (a duplicate name, a
concurrent writer), the batch is replayed one command at a time, so each gets its own answer; a
version conflict without an expected version is retried on fresh state. A command with a command
id stores its reply with its request's fingerprint (`shared.idempotency`): a retry gets that
reply, the same id with another request a conflict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from shared.contracts.customer import CreateCustomer
from shared.envelope import EventEnvelope
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import ConcurrencyError, DuplicateCommand, EventStore, Fragment, StoredReply
from shared.idempotency import fingerprint, replay
from shared.ids import new_id_str
from shared.personal_data import SubjectErased
from shared.rpc import Respond, error_bytes

from customer.application import young_collections
from customer.application.command_kinds import Command, EditCustomerCmd, ExpirePenalty, decision
from customer.application.command_trace import (
    APPEND_SECONDS,
    BATCH_SECONDS,
    BATCHED,
    BATCHES,
    batch_done,
    from_environment,
)
from customer.application.contact_commands import contact_fragments
from customer.application.erasure import erased_replies, erased_subjects, erasure_fragments
from customer.application.idempotency import RecentReplies
from customer.application.number_block_commands import block_fragments
from customer.application.payments import PAYMENT_COMMANDS, payment_reply, receipt_fragments
from customer.application.settings import SettingsService
from customer.application.state_cache import StateCache
from customer.domain import decide as rules
from customer.domain import events as ev
from customer.domain.errors import Taken
from customer.domain.state import CustomerState
from customer.projections import board

__all__ = [
    "APPEND_SECONDS", "BATCHED", "BATCHES", "BATCH_SECONDS", "Command", "CustomerCommands", "EditCustomerCmd",
    "ExpirePenalty",
]

log = structlog.get_logger(__name__)
_MARKS: ContextVar[list[float] | None] = ContextVar("command_trace_marks", default=None)

RETRIES = 5


@dataclass(slots=True)
class _Pending:
    command: Command
    answer: asyncio.Future[bytes] | Respond  # a caller awaiting a future, or the RPC server's reply
    stream_id: str  # a create's new id is fixed here, so a replayed batch keeps it
    fingerprint: str | None  # of the request, when the command has a command id


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str)


class _AppendFailed(Exception):
    """The batch's statement failed; replay it one command at a time."""


class CustomerCommands:
    """Runs customer commands, batching concurrent ones into one append."""

    def __init__(
        self,
        store: EventStore,
        settings: SettingsService,
        cache: StateCache,
        *,
        max_batch: int = 256,
        partitions: int = 1,
        recent_replies: int = 20_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_erased: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_erased = on_erased  # told the subjects whose keys an append destroyed
        self.settings = settings
        self.cache = cache
        self.max_batch = max_batch
        self.clock = clock
        self._queues: list[asyncio.Queue[_Pending]] = [asyncio.Queue() for _ in range(partitions)]
        self.recent = RecentReplies(recent_replies)
        self.batches = 0
        self.commands = 0
        self.trace = from_environment()  # diagnostics, off unless PATCHBAY_COMMAND_TRACE

    async def handle(self, command: Command, *, request_fingerprint: str | None = None) -> bytes:
        """Run one command; answer its reply (a card, or an error) as JSON bytes.

        `request_fingerprint`: the fingerprint of the request the command was built from, when
        the command holds generated values (default: the command's own).
        """
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.submit(command, future, request_fingerprint=request_fingerprint)
        return await future

    def submit(self, command: Command, answer: asyncio.Future[bytes] | Respond, *,
               request_fingerprint: str | None = None) -> None:
        """Queue one command; its worker sets `answer` (a future) or awaits it (a reply) with the reply."""
        stream_id = (
            new_id_str() if isinstance(command, CreateCustomer) else str(command.customer_id)
        )
        if command.meta.command_id is not None and request_fingerprint is None:
            request_fingerprint = fingerprint(command)
        self._queues[hash(stream_id) % len(self._queues)].put_nowait(
            _Pending(command, answer, stream_id, request_fingerprint)
        )

    async def run(self) -> None:
        """Run every partition's worker until cancelled."""
        young_collections.install()
        await asyncio.gather(*[self._work(queue) for queue in self._queues])

    async def _work(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            started = time.perf_counter()
            marks = [started] if self.trace is not None else None
            _MARKS.set(marks)  # each partition's worker is a task of its own: its own marks
            try:
                results = await self._run_batch(batch)
            except Exception as exc:  # the database is down, say: answer, don't hang
                log.exception("command_batch_failed", size=len(batch))
                unavailable = ServiceError(
                    ErrorCode.UNAVAILABLE, f"the customer store is unavailable ({type(exc).__name__}); retry"
                )
                results = [(p, error_bytes(unavailable)) for p in batch]
                self.cache.forget(p.stream_id for p in batch)
            for pending, reply in results:
                answer = pending.answer
                if isinstance(answer, asyncio.Future):
                    if not answer.done():
                        answer.set_result(reply)
                else:
                    # publishes into nats-py's buffer (waits only when it is full); its flusher
                    # writes them when this worker next waits: at the next batch's append. A yield
                    # here to write them sooner let the relay run first: 81 % -> 95 % of the
                    # worker's time in batches without it (docs/performance.md, third round)
                    await answer(reply)
            if self.trace is not None and marks is not None:
                marks.append(time.perf_counter())
                self.trace.batch(marks, batch)
            self.batches += 1
            self.commands += len(batch)
            batch_done(len(batch), started)

    async def _run_batch(self, batch: list[_Pending]) -> list[tuple[_Pending, bytes]]:
        try:
            # optimistic, a batch of one too: no look-up of stored replies first; a retried
            # command that this process has not answered makes the append fail (a duplicate
            # command id), and then each command goes the careful way below
            return await self._execute(batch, check_stored=False)
        except _AppendFailed:
            self.cache.forget(p.stream_id for p in batch)
        return [(p, await self._execute_one(p)) for p in batch]

    async def _execute_one(self, pending: _Pending) -> bytes:
        for _ in range(RETRIES):
            try:
                [(_, reply)] = await self._execute([pending])
                return reply
            except _AppendFailed as exc:
                cause = exc.__cause__
                self.cache.forget([pending.stream_id])
                if isinstance(cause, Taken):  # a name, e-mail or block another customer holds
                    return error_bytes(cause)
                if isinstance(cause, SubjectErased):  # the fence: no new key for an erased subject
                    return error_bytes(ServiceError(ErrorCode.ERASED, str(cause)))
                # ConcurrencyError or DuplicateCommand: the next attempt sees fresh state
        return error_bytes(ServiceError(ErrorCode.CONFLICT, "the customer is changing too fast; retry"))

    async def _execute(
        self, batch: list[_Pending], check_stored: bool = True
    ) -> list[tuple[_Pending, bytes]]:
        ids = [p.command.meta.command_id for p in batch if p.command.meta.command_id]
        stored = {cid: r for cid in ids if (r := self.recent.get(cid)) is not None}
        if check_stored and len(stored) < len(ids):
            stored |= await self.store.stored_replies_with_fingerprints(
                [i for i in ids if i not in stored]
            )
        settings = await self.settings.current()
        await self.cache.ensure(
            p.stream_id for p in batch if not isinstance(p.command, CreateCustomer)
        )
        now = self.clock()
        working: dict[str, CustomerState | None] = {}
        cards: dict[str, bytes] = {}  # the latest card JSON of each customer changed here
        answered: dict[str, StoredReply] = {}
        events: list[EventEnvelope] = []
        facts: list[tuple[str, ev.Event]] = []  # the same events, typed, with their stream
        replies: list[tuple[str, str, str | None]] = []
        results: list[tuple[_Pending, bytes]] = []
        decided: list[Command] = []  # commands with events, for their extra rows (contacts)
        for pending in batch:
            cmd = pending.command
            cid = cmd.meta.command_id
            if cid and cid in stored:
                results.append((pending, replay(stored[cid], pending.fingerprint)))
                continue
            if cid and cid in answered:
                results.append((pending, replay(answered[cid], pending.fingerprint)))
                continue
            try:
                if not isinstance(cmd, ExpirePenalty):  # the sweeper gives its own reason
                    rules.require_reason(settings, cmd.meta.reason)
                stream_id = pending.stream_id
                if stream_id in working:
                    state = working[stream_id]
                elif isinstance(cmd, CreateCustomer):
                    state = None
                else:
                    state = self.cache.get(stream_id)
                made = decision(cmd, stream_id, state, now)
            except ServiceError as err:
                results.append((pending, error_bytes(err)))
                continue
            drafts, state, card = made.drafts, made.state, made.card
            events.extend(made.events)
            facts.extend((stream_id, draft) for draft in drafts)
            assert state is not None
            reply = _dumps(payment_reply(cmd, state)) if isinstance(cmd, PAYMENT_COMMANDS) else card
            if drafts:
                decided.append(cmd)
                working[stream_id] = state
                cards[stream_id] = card
                if cid:
                    replies.append((cid, reply.decode(), pending.fingerprint))
                    answered[cid] = StoredReply(reply, pending.fingerprint)
            results.append((pending, reply))
        if events:
            rows = [board.row(s, cards[sid].decode()) for sid, s in working.items() if s is not None]
            young_collections.collect_soon()  # while PostgreSQL commits
            waiting = time.perf_counter()
            if (marks := _MARKS.get()) is not None:
                del marks[1:]  # the timeline shows the batch's last append (a replay's, a retry's)
                marks.append(waiting)
            try:
                await self.store.append(
                    events, replies=replies,
                    fragments=[Fragment(board.UPSERT_SQL, [board.rows_json(rows)]),
                               *contact_fragments(decided, working, facts, now),
                               *block_fragments(facts), *receipt_fragments(facts, working),
                               *erasure_fragments(facts), *erased_replies(facts, cards)],
                )
            except (ConcurrencyError, DuplicateCommand, Taken, SubjectErased) as exc:
                raise _AppendFailed() from exc
            finally:
                APPEND_SECONDS.inc(time.perf_counter() - waiting)
                if marks is not None:
                    marks.append(time.perf_counter())
            if gone := erased_subjects(facts):
                for stream_id in {s for s, e in facts if isinstance(e, ev.ERASURE_EVENTS)}:
                    self.recent.forget_customer(stream_id)
                if self.on_erased is not None:
                    self.on_erased(gone)
            for stream_id, state in working.items():
                self.cache.put(stream_id, state)
            for cid, first in answered.items():
                self.recent.put(cid, first)
        return results
