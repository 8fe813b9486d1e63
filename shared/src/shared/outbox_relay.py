"""The outbox relay: publishes committed events to JetStream, in order, exactly as stored.

It never tracks "position > last seen": it reads the `outbox` rows that still exist, so a
transaction that commits late (with a lower position) is published on the next pass.
One relay publishes at a time (`shared.leader.LeaderLoop`: an advisory lock); LISTEN/NOTIFY
wakes it, a short poll is the fallback. A crash between publish and delete republishes: JetStream's
dedup (`Nats-Msg-Id` = event id) and idempotent consumers absorb it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet

import asyncpg
import structlog
from nats.js import JetStreamContext

from shared.envelope import EventEnvelope
from shared.eventstore import EVENT_COLUMNS, _row_to_event
from shared.leader import LeaderLoop
from shared.logging import CAUSATION_HEADER, CORRELATION_HEADER
from shared.ops import PUBLISHED
from shared.publish_acks import BatchPublisher, one_line

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "outbox"
MAX_HINTS = 50_000
HINT_TURNS = 4  # loop turns a pass waits for the hints of rows committed by this process
HINT_WAIT_S = 0.5  # at most, for an append of this process still in flight (`follow`)
_PENDING = "SELECT position FROM outbox ORDER BY position LIMIT $1"


def nats_headers(event: EventEnvelope) -> dict[str, str]:
    """Headers of the published message: dedup id, type, and tracing ids."""
    event_id = str(event.event_id)
    headers = {"Nats-Msg-Id": event_id, "Patchbay-Event-Type": event.type}
    if event.metadata.correlation_id:
        headers[CORRELATION_HEADER] = event.metadata.correlation_id
    headers[CAUSATION_HEADER] = event_id
    return headers


def event_header_block(event: EventEnvelope) -> bytes:
    """`header_block(nats_headers(event))`, written at once (a fifth of its cost; a test holds them equal)."""
    event_id = str(event.event_id)
    correlation = event.metadata.correlation_id
    return (
        f"NATS/1.0\r\nNats-Msg-Id: {event_id}\r\nPatchbay-Event-Type: {one_line(event.type)}\r\n"
        + (f"{CORRELATION_HEADER}: {one_line(correlation)}\r\n" if correlation else "")
        + f"{CAUSATION_HEADER}: {event_id}\r\n\r\n"
    ).encode()


class OutboxRelay:
    """Moves rows of one schema's outbox to JetStream."""

    def __init__(
        self,
        *,
        dsn: str,
        schema: str,
        js: JetStreamContext,
        batch_size: int = 1000,
        poll_interval_s: float = 1.0,
        on_published: Callable[[list[EventEnvelope]], Awaitable[None]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.js = js
        self.publisher = BatchPublisher(js)  # one write per batch, acks on one inbox (publish_acks)
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.on_published = on_published
        self.published_total = 0
        self.read_back_total = 0  # events read back from the table (no hint of this process for them)
        self._leader = LeaderLoop(
            name="outbox_relay", dsn=dsn, schema=schema, lock_key=f"outbox-relay:{schema}",
            channel=NOTIFY_CHANNEL, work=self.publish_pending, batch_size=batch_size,
            poll_interval_s=poll_interval_s,
            # its deletes need not wait for the WAL flush: one lost in a crash of PostgreSQL only
            # publishes its events again, which JetStream's dedup absorbs (as after a relay crash)
            settings={"synchronous_commit": "off"},
        )
        # events this process just committed, by position: published without reading them back
        self._hints: dict[int, EventEnvelope] = {}
        self._payloads: dict[int, bytes] = {}  # and their JSON as the store serialized it (hint_json)
        self._appending: AbstractSet[int] | None = None  # this process's appends in flight (follow)

    def hint(self, events: Sequence[EventEnvelope]) -> None:
        """Hand over just-committed events (positions set); the outbox rows stay the truth."""
        if self.is_leader and len(self._hints) < MAX_HINTS:
            for event in events:
                if event.position is not None:
                    self._hints[event.position] = event
        self._leader.wake()

    def hint_json(self, payloads: dict[int, bytes]) -> None:
        """The just-committed events' JSON by position (EventStore's `on_appended_json`), published as is."""
        if self.is_leader and len(self._payloads) < MAX_HINTS:
            self._payloads.update(payloads)

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the relay's lock now."""
        return self._leader.is_leader

    async def run(self) -> None:
        """Run until cancelled: take the lead when free, publish whenever woken."""
        await self._leader.run()

    def follow(self, appending: AbstractSet[int]) -> None:
        """Watch this process's appends in flight (`EventStore.appending`): a pass waits for their hints.

        Without it a pass gives the hints `HINT_TURNS` loop turns, then reads the missing events back.
        """
        self._appending = appending

    async def _hinted(self, positions: list[int], in_flight: set[int]) -> list[int]:
        """Wait for the hints of this process's commits among `positions`; return the positions still missing.

        `in_flight`: the appends of this process in flight when the outbox was read. Once all of them
        have returned, a position still without a hint was committed elsewhere (another replica, a
        caller's transaction): it is read back from the events.
        """
        missing = [p for p in positions if p not in self._hints]
        deadline = asyncio.get_running_loop().time() + HINT_WAIT_S
        turns = 0
        while missing:
            if self._appending is None or not in_flight:
                if turns >= HINT_TURNS:
                    break
            elif in_flight.isdisjoint(self._appending) or asyncio.get_running_loop().time() > deadline:
                break
            # the NOTIFY may come before this process's append has returned: a few loop turns,
            # then (an append still in flight) 1 ms sleeps
            await asyncio.sleep(0 if turns < HINT_TURNS else 0.001)
            turns += 1
            missing = [p for p in missing if p not in self._hints]
        return missing

    def _in_flight(self) -> set[int]:
        return set(self._appending) if self._appending is not None else set()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of unpublished events in position order; return how many."""
        in_flight = self._in_flight()  # before the read: the appends whose rows it may see
        positions = [r[0] for r in await conn.fetch(_PENDING, self.batch_size)]
        if not positions:
            # no clear() of the hints here: this read may predate a commit whose hints just came
            # (they are pruned below once the outbox has moved past them)
            return 0
        # hints below the lowest unpublished position were published by another leader
        for stale in [p for p in self._hints if p < positions[0]]:
            del self._hints[stale]
        for stale in [p for p in self._payloads if p < positions[0]]:
            del self._payloads[stale]
        missing = await self._hinted(positions, in_flight)
        fetched: dict[int, EventEnvelope] = {}
        if missing:
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE position = ANY($1::bigint[])", missing
            )
            fetched = {r["position"]: _row_to_event(r) for r in rows}
            self.read_back_total += len(fetched)
        events = [hint if (hint := self._hints.pop(p, None)) is not None else fetched[p] for p in positions]
        payloads = self._payloads
        await self.publisher.publish([
            (e.subject, event_header_block(e), payloads.pop(p, b"") or e.model_dump_json().encode())
            for p, e in zip(positions, events, strict=True)
        ])
        await conn.execute("DELETE FROM outbox WHERE position = ANY($1::bigint[])", positions)
        self.published_total += len(events)
        PUBLISHED.labels(self.schema).inc(len(events))
        if self.on_published:
            await self.on_published(events)
        return len(events)
