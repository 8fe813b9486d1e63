"""Durable JetStream pull consumers that never stall: batches, explicit acks, retries, dead letters.

FastStream's defaults are traps here (batch 1, one worker, and REJECT_ON_ERROR that drops a
message whose handler raised), so consumers are built on nats-py's pull API directly:
- fetch in large batches, hand the whole batch to the handler (one transaction for it);
- if the batch fails, retry its messages one by one, so one bad message cannot block the rest;
- a message that fails is NAKed with a growing delay, up to `max_deliver` deliveries;
- a message that can never succeed (bad JSON, wrong schema: `Poison`), or that ran out of
  deliveries, goes to `dlq.<durable>` on the DEAD_LETTERS stream with the error in its
  headers, is TERMed, and the consumer goes on with the next message.
Beside it: the lease claim of a partition's reader (`shared.leases`), the parking of a dead
letter (`shared.dead_lettering`), one consumer per partition (`shared.partitioned_consumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from pydantic import ValidationError

from shared.consumer_spec import ConsumerSpec, ensure_consumer, restart_at, retire_unpartitioned, rewind
from shared.dead_lettering import DEAD_LETTERED, park
from shared.leases import STANDBY_RETRY_S, HandedBack, LeaseLost, PartitionClaim, PartitionLeases
from shared.ops import CONSUMER_LAG, MESSAGES, PARTITION_READING
from shared.partition_layout import plan_durable, stream_layout

__all__ = [
    "DEAD_LETTERED", "LAG_EVERY_S", "STANDBY_RETRY_S", "BatchHandler", "ConsumerSpec", "HandedBack",
    "JetStreamConsumer", "LeaseLost", "Poison", "Relayout", "ensure_consumer",
    "restart_at", "retire_unpartitioned", "rewind",
]

log = structlog.get_logger(__name__)

LAG_EVERY_S = 5.0  # an idle consumer asks the server for its pending count this often
BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


class Poison(Exception):
    """A message that no retry can fix: dead-letter it at once."""


class Relayout(RuntimeError):
    """The stream's layout moved on (switched, or older messages passed): declare the durable again."""


def _is_poison(exc: BaseException) -> bool:
    return isinstance(exc, Poison | ValidationError | ValueError | UnicodeDecodeError | KeyError)


class JetStreamConsumer:
    """Runs one durable consumer until cancelled.

    `ordered`: this process is the durable's only reader (it owns the partition), and messages
    are handled strictly in stream order: a message that fails for a passing reason is retried
    in place (the rest wait), and each (re)start rewinds the durable to its ack floor, so what a
    dead predecessor held comes again first instead of after the messages behind it.
    """

    def __init__(
        self, js: JetStreamContext, spec: ConsumerSpec, handler: BatchHandler, *,
        batch: int = 500, fetch_timeout_s: float = 1.0, ordered: bool = False,
        leases: PartitionLeases | None = None, stand_in_after_s: float | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.ordered = ordered
        self.leases = leases
        # stand_in_after_s None: the partition is this replica's own; else read it only while its
        # replica has been gone this long, and hand it back when it returns (shared.leases)
        self.claim = PartitionClaim(leases, f"{spec.stream}/{spec.durable}", spec.durable, stand_in_after_s)
        self.lease = self.claim.lease
        self.js = js
        self.spec = spec
        self.handler = handler
        self.batch = batch
        self.fetch_timeout_s = fetch_timeout_s
        # a short batch waits this long for more before it is handled: fewer, larger batches
        # where a message trickles in at a time (each batch costs a transaction and a fetch)
        self.linger_s = linger_s
        self.handled = 0
        self.dead_lettered = 0
        self.failures = 0
        self._lag_at = 0.0
        self._ack_last_only = False  # the durable acks all up to a message (see prepare)
        self.declared = spec  # as declared; `spec` is what the stream's layout asks now
        self._layout_at = 0.0
        self._older_layout = False  # the stream still stores the token last: watch for its switch
        self._narrow_after: int | None = None  # read both layouts until past this sequence

    async def run(self) -> None:
        """Fetch, handle, ack; reconnect and go on after any failure of our own."""
        relayout = False
        while True:
            try:
                if relayout:  # the lease is still ours: only the durable changes
                    relayout = False
                    await self.prepare_durable()
                else:
                    await self.prepare()
                with self._reading():
                    await self.read()
            except asyncio.CancelledError:
                raise
            except Relayout as why:
                relayout = True
                log.info("consumer_relayout", durable=self.spec.durable, why=str(why))
            except HandedBack:
                log.info("partition_handed_back", durable=self.spec.durable)
            except Exception as exc:
                log.warning("consumer_restarting", durable=self.spec.durable, error=str(exc))
                await asyncio.sleep(1.0)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """The `patchbay_partition_reading` gauge: 1 while this process reads the durable."""
        gauge = PARTITION_READING.labels(self.spec.durable)
        gauge.set(1)
        try:
            yield
        finally:
            gauge.set(0)

    async def read(self) -> None:
        """Fetch and handle batches until something fails."""
        sub = await self.js.pull_subscribe_bind(self.spec.durable, stream=self.spec.stream)
        try:
            while True:
                try:
                    msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout_s)
                except (NatsTimeoutError, TimeoutError):
                    msgs = []
                if not msgs:  # fetch() answers [] when the server's 408 ends its pull first
                    await self.idle()
                    continue
                if self.linger_s > 0 and len(msgs) < self.batch:
                    await asyncio.sleep(self.linger_s)
                    with contextlib.suppress(NatsTimeoutError, TimeoutError):
                        msgs += await sub.fetch(self.batch - len(msgs), timeout=0.05)
                await self.process(msgs)
                await self.hand_back_if_wanted()
        finally:
            # a pull subscription left behind makes the connection's drain wait its full timeout
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def idle(self) -> None:
        """Nothing came: check the lease, note the lag, see whether the stream's layout was switched."""
        self.check_lease()
        await self.hand_back_if_wanted()
        await self._record_lag()
        await self._watch_layout()

    async def _watch_layout(self) -> None:
        """Every few seconds while idle: was the stream switched, is nothing of the older layout ahead?"""
        now = time.monotonic()
        if not (self._older_layout or self._narrow_after is not None) or now - self._layout_at < LAG_EVERY_S:
            return
        self._layout_at = now
        if self._older_layout and (await stream_layout(self.js, self.spec.stream)).before:
            raise Relayout("the stream now stores the partition token before the key")
        if self._narrow_after is not None:
            info = await self.js.consumer_info(self.spec.stream, self.spec.durable)
            if not info.num_pending and not info.num_ack_pending:
                raise Relayout("nothing stored in the older layout is ahead")

    async def prepare(self) -> None:
        """Take the partition's lease (if leased), create or update the durable; rewind an ordered one."""
        await self.claim.take()
        await self.prepare_durable()

    async def prepare_durable(self) -> None:
        """Create or update the durable (with the filters the stream's layout asks); rewind an ordered one."""
        start = None
        if self.declared.legacy_filters:
            plan = await plan_durable(self.js, self.declared)
            self.spec, start = plan.spec, plan.start_seq
            self._older_layout, self._narrow_after = not plan.layout.before, plan.narrow_after
            self._layout_at = time.monotonic()
        if start is not None:
            await restart_at(self.js, self.spec, start)
        else:
            await ensure_consumer(self.js, self.spec)
        if self.ordered:
            await rewind(self.js, self.spec)
            # as the server has it: a durable made before `ack_all` keeps its explicit acks
            info = await self.js.consumer_info(self.spec.stream, self.spec.durable)
            self._ack_last_only = info.config.ack_policy == AckPolicy.ALL

    async def hand_back_if_wanted(self) -> None:
        """A stand-in, between batches: give the lease back once the partition's replica is back."""
        await self.claim.hand_back_if_wanted()

    async def _record_lag(self) -> None:
        """When idle, note how far behind the stream this consumer is (a gauge, every few seconds)."""
        now = time.monotonic()
        if now - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = now
        with contextlib.suppress(Exception):
            info = await self.js.consumer_info(self.spec.stream, self.spec.durable)
            CONSUMER_LAG.labels(self.spec.durable).set(info.num_pending or 0)

    def check_lease(self) -> None:
        """Raise LeaseLost when this process lost its partition's lease (its PostgreSQL session)."""
        self.claim.check()

    async def process(self, msgs: Sequence[Msg]) -> None:
        """Handle a batch; on failure, each message alone. An empty batch reaches no handler."""
        if not msgs:
            return
        self.check_lease()
        try:
            await self.handler(msgs)
        except Exception:
            for msg in msgs:
                await self._one(msg)
            return
        if self._ack_last_only:
            await msgs[-1].ack()  # acks the whole batch: delivered in order to this reader alone
        else:
            for msg in msgs:
                await msg.ack()
        self.handled += len(msgs)
        MESSAGES.labels(self.spec.durable, "handled").inc(len(msgs))
        if self._narrow_after is not None and msgs[-1].metadata.sequence.stream >= self._narrow_after:
            raise Relayout("past the messages stored in the older layout")

    async def _one(self, msg: Msg) -> None:
        delivered = msg.metadata.num_delivered if msg.reply else self.spec.max_deliver
        while True:
            try:
                await self.handler([msg])
            except Exception as exc:
                self.failures += 1
                if _is_poison(exc) or delivered >= self.spec.max_deliver:
                    await self.dead_letter(msg, exc)
                    return
                delay = self.spec.backoff_s[min(delivered - 1, len(self.spec.backoff_s) - 1)]
                log.warning("message_retry", durable=self.spec.durable, subject=msg.subject,
                            delivered=delivered, delay_s=delay, error=str(exc))
                MESSAGES.labels(self.spec.durable, "retried").inc()
                if not self.ordered:
                    await msg.nak(delay=delay)
                    return
                # hold the partition: the customer's next message must not overtake this one
                await msg.in_progress()
                await asyncio.sleep(delay)
                delivered += 1
                continue
            await msg.ack()
            self.handled += 1
            MESSAGES.labels(self.spec.durable, "handled").inc()
            return

    async def dead_letter(self, msg: Msg, exc: BaseException) -> None:
        """Park a message on `dlq.<durable>` with its error (shared.dead_lettering), then TERM it."""
        await park(self.js, self.spec, msg, exc)
        await msg.term()
        self.dead_lettered += 1
        MESSAGES.labels(self.spec.durable, "dead_lettered").inc()
        log.error("message_dead_lettered", durable=self.spec.durable, subject=msg.subject,
                  sequence=msg.metadata.sequence.stream, error=str(exc))
