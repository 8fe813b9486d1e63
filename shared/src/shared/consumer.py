"""Durable JetStream pull consumers that never stall: batches, explicit acks, retries, dead letters.

FastStream's defaults are traps here (batch 1, one worker, and REJECT_ON_ERROR that drops a
message whose handler raised), so consumers are built on nats-py's pull API directly:
- fetch in large batches, hand the whole batch to the handler (one transaction for it);
- if the batch fails, retry its messages one by one, so one bad message cannot block the rest;
- a message that fails is NAKed with a growing delay, up to `max_deliver` deliveries;
- a message that can never succeed (bad JSON, wrong schema: `Poison`), or that ran out of
  deliveries, goes to `dlq.<durable>` on the DEAD_LETTERS stream with the error in its
  headers, is TERMed, and the consumer goes on with the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy
from pydantic import ValidationError

from shared.consumer_spec import ConsumerSpec, ensure_consumer, restart_at, retire_unpartitioned, rewind
from shared.contracts.events import REGISTRY
from shared.contracts.events.ops import OPS_CATEGORY, MessageDeadLettered
from shared.envelope import Metadata
from shared.leases import PartitionLeases
from shared.logging import CORRELATION_HEADER
from shared.ops import CONSUMER_LAG, MESSAGES, PARTITION_READING
from shared.partition_layout import plan_durable, stream_layout
from shared.partitions import PARTITIONS, PartitionKey, published_subject
from shared.streams import partition_key_of

__all__ = [
    "DEAD_LETTERED", "LAG_EVERY_S", "STANDBY_RETRY_S", "BatchHandler", "ConsumerSpec", "HandedBack",
    "JetStreamConsumer", "LeaseLost", "PartitionedConsumer", "Poison", "Relayout", "ensure_consumer",
    "restart_at", "retire_unpartitioned", "rewind",
]

log = structlog.get_logger(__name__)

LAG_EVERY_S = 5.0  # an idle consumer asks the server for its pending count this often
DEAD_LETTERED = MessageDeadLettered.TYPE  # the error event of a dead letter, on OPS_EVENTS
STANDBY_RETRY_S = 2.0  # a standby tries to take a partition's lease this often
BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


class Poison(Exception):
    """A message that no retry can fix: dead-letter it at once."""


class LeaseLost(RuntimeError):
    """This process no longer holds its partition's lease: stop reading, wait to take it again."""


class HandedBack(LeaseLost):
    """The replica this partition belongs to is back: its stand-in gave the lease back."""


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
        self.lease = f"{spec.stream}/{spec.durable}"
        # held by the replica the partition belongs to while it runs (shared.leases)
        self.wanted = f"wanted:{self.lease}"
        # None: the partition is this replica's own; else read it only while its replica has
        # been gone this long, and hand it back when it returns
        self.stand_in_after_s = stand_in_after_s
        self._wanted_check_at = 0.0
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
        if self.leases is not None:
            if self.stand_in_after_s is None:
                await self._claim_own(self.leases)
            else:
                await self._stand_in(self.leases, self.stand_in_after_s)
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

    async def _claim_own(self, leases: PartitionLeases) -> None:
        """Take this replica's own partition: say it is wanted, wait for its lease."""
        standby = False
        while True:
            # claimed again each round: a stand-in looking at it holds it for an instant
            await leases.claim(self.wanted)
            if await leases.claim(self.lease):
                break
            if not standby:
                log.info("partition_standby", durable=self.spec.durable,
                         hint="another process reads this partition; taking over when it stops")
                standby = True
            await asyncio.sleep(STANDBY_RETRY_S)
        if standby:
            log.info("partition_taken_over", durable=self.spec.durable)

    async def _stand_in(self, leases: PartitionLeases, after_s: float) -> None:
        """Wait until the replica this partition belongs to has been gone `after_s`, then take it."""
        unwanted_since: float | None = None
        while True:
            if await leases.taken(self.wanted):
                unwanted_since = None
            else:
                now = time.monotonic()
                unwanted_since = unwanted_since or now
                if now - unwanted_since >= after_s and await leases.claim(self.lease):
                    log.warning("partition_stood_in", durable=self.spec.durable,
                                hint="its replica is down; reading it until the replica returns")
                    self._wanted_check_at = now + STANDBY_RETRY_S
                    return
            await asyncio.sleep(min(STANDBY_RETRY_S, max(after_s / 2, 0.1)))

    async def hand_back_if_wanted(self) -> None:
        """A stand-in, between batches: give the lease back once the partition's replica is back."""
        if self.leases is None or self.stand_in_after_s is None:
            return
        now = time.monotonic()
        if now < self._wanted_check_at:
            return
        self._wanted_check_at = now + STANDBY_RETRY_S
        if await self.leases.taken(self.wanted):
            await self.leases.release(self.lease)
            raise HandedBack(f"gave {self.lease} back to its replica")

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
        if self.leases is not None and not self.leases.holds(self.lease):
            raise LeaseLost(f"lost the lease of {self.lease}")

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
        """Park a message on `dlq.<durable>` (of the unpartitioned durable) with its error, then TERM it."""
        meta = msg.metadata
        headers = {
            "Patchbay-Error": f"{type(exc).__name__}: {exc}"[:1000],
            # as published (what a replay publishes again); the stored one has the partition token
            "Patchbay-Original-Subject": published_subject(msg.subject, partition_key_of(meta.stream)),
            "Patchbay-Stored-Subject": msg.subject,
            "Patchbay-Original-Stream": meta.stream,
            "Patchbay-Original-Sequence": str(meta.sequence.stream),
            "Patchbay-Consumer": self.spec.durable,
            "Nats-Msg-Id": f"dlq:{self.spec.durable}:{meta.stream}:{meta.sequence.stream}",
        }
        parked = await self.js.publish(self.spec.dead_letter_subject, msg.data, headers=headers)
        await self._error_event(msg, headers, parked.seq)
        await msg.term()
        self.dead_lettered += 1
        MESSAGES.labels(self.spec.durable, "dead_lettered").inc()
        log.error("message_dead_lettered", durable=self.spec.durable, subject=msg.subject,
                  sequence=meta.sequence.stream, error=str(exc))


    async def _error_event(self, msg: Msg, letter: dict[str, str], parked_seq: int) -> None:
        """Announce the dead letter as an event (`events.ops.<consumer>.MessageDeadLettered`, stream
        OPS_EVENTS) for alerting and operators; best effort: the letter itself is what is kept."""
        consumer = self.spec.dead_letter_subject.removeprefix("dlq.")
        dead = MessageDeadLettered(
            consumer=self.spec.durable, stream=letter["Patchbay-Original-Stream"],
            sequence=int(letter["Patchbay-Original-Sequence"]),
            subject=letter["Patchbay-Original-Subject"], error=letter["Patchbay-Error"],
            dead_letter_sequence=parked_seq,
        )
        event = REGISTRY.envelope(
            dead, category=OPS_CATEGORY, stream_id=consumer, version=parked_seq,
            metadata=Metadata(correlation_id=(msg.headers or {}).get(CORRELATION_HEADER)),
        )
        try:
            await self.js.publish(event.subject, event.model_dump_json().encode(),
                                  headers={"Nats-Msg-Id": f"ops:{letter['Nats-Msg-Id']}"})
        except Exception as exc:
            log.warning("dead_letter_event_not_published", durable=self.spec.durable, error=str(exc))


class PartitionedConsumer:
    """A consumer split by customer partition: one loop per owned partition, each in order.

    Runs the partitions of `spec` this replica owns (see shared.partitions), each a
    `JetStreamConsumer` (or `consumer_cls`) of its own, so partitions go on in parallel while
    one partition's messages are handled one batch after another. With leases and
    `failover_after_s`, it also stands in for the other replicas' partitions: one whose replica
    has been gone that long is read here until the replica is back.
    """

    def __init__(
        self, js: JetStreamContext, spec: ConsumerSpec, handler: BatchHandler, owned: list[int], *,
        consumer_cls: type[JetStreamConsumer] = JetStreamConsumer, key: PartitionKey | None = None,
        lease_dsn: str | None = None, failover_after_s: float = 0.0, **options: Any,
    ) -> None:
        self.js = js
        self.spec = spec
        self.key = key or partition_key_of(spec.stream)
        # with a database, each partition is read by one process at a time (shared.leases)
        self.leases = PartitionLeases(lease_dsn) if lease_dsn else None
        self.consumers = [consumer_cls(js, s, handler, ordered=True, leases=self.leases, **options)
                          for s in spec.partitioned(owned, self.key)]
        if self.leases is not None and failover_after_s > 0:
            # stand in for the other replicas' partitions while they are down
            others = [p for p in range(PARTITIONS) if p not in owned]
            self.consumers += [
                consumer_cls(js, s, handler, ordered=True, leases=self.leases,
                             stand_in_after_s=failover_after_s, **options)
                for s in spec.partitioned(others, self.key)]

    @property
    def handled(self) -> int:
        """Messages handled by every partition."""
        return sum(c.handled for c in self.consumers)

    @property
    def dead_lettered(self) -> int:
        """Messages dead-lettered by every partition."""
        return sum(c.dead_lettered for c in self.consumers)

    async def run(self) -> None:
        """Retire the unpartitioned durable of earlier releases, then run every partition."""
        try:
            await retire_unpartitioned(self.js, self.spec, self.key)
            await asyncio.gather(*(c.run() for c in self.consumers))
        finally:
            if self.leases is not None:
                await self.leases.close()
