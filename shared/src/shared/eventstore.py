"""The PostgreSQL event store: append with optimistic concurrency, in one statement.

Tables (created by the owning service's migration, see customer's 0001): `events`
(PRIMARY KEY (stream_id, version), event_id UNIQUE, global `position`), `outbox`
(positions not yet published) and `commands` (command_id -> first reply, and where the table
has one, the `fingerprint` of the request that got it).
An append writes the events, their outbox rows, the command replies and any read-model
fragments in ONE statement: it fully happens or not at all, in one round trip.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import orjson

from shared.envelope import EventEnvelope, Metadata
from shared.personal_data import DataKey, DeferredKeys, KeyProvider, decrypt_events, encrypt_events


class ConcurrencyError(Exception):
    """Another writer appended to one of these streams first."""


class DuplicateCommand(Exception):
    """A command with this command_id was committed concurrently."""


class StoredReply(NamedTuple):
    """A command's first reply (raw JSON) and the fingerprint of the request that got it."""

    reply: bytes
    fingerprint: str | None  # None: stored before fingerprints were kept


@dataclass
class Fragment:
    """A data-modifying SQL statement joined to the append; `{}` marks each argument in order."""

    sql: str
    args: list[Any] = field(default_factory=list)


# the batch travels as one JSON document per table: serialized in Rust (pydantic/orjson),
# parsed in C by PostgreSQL; measured here, cheaper than asyncpg encoding a dozen arrays
_EVENTS = (
    "e AS (INSERT INTO events (event_id, category, stream_id, version, type, schema_version,"
    " occurred_at, metadata, data) SELECT event_id, category, stream_id, version, type,"
    " schema_version, occurred_at, metadata, data FROM jsonb_to_recordset({}::jsonb) AS x("
    "event_id uuid, type text, schema_version int, category text, stream_id text, version int,"
    " occurred_at timestamptz, metadata jsonb, data jsonb) RETURNING position)"
)
_OUTBOX = "o AS (INSERT INTO outbox (position) SELECT position FROM e)"
_COMMANDS = (
    "c AS (INSERT INTO commands (command_id, reply) SELECT command_id, reply"
    " FROM jsonb_to_recordset({}::jsonb) AS x(command_id text, reply text))"
)
_COMMANDS_FINGERPRINTED = (
    "c AS (INSERT INTO commands (command_id, reply, fingerprint) SELECT command_id, reply,"
    " fingerprint FROM jsonb_to_recordset({}::jsonb) AS x(command_id text, reply text,"
    " fingerprint text))"
)
_REPLY_KEYS = ("command_id", "reply", "fingerprint")
DATA_KEY_CONSTRAINTS = ("data_keys_pkey", "data_keys_key_id_key")
_EVENT_JSON = EventEnvelope.__pydantic_serializer__.to_json  # one event, without TypeAdapter's wrapper
_NULL_POSITION = b'"position":null}'  # how an event's JSON ends before it is stored (the last field)


def published_json(wire: bytes, position: int) -> bytes:
    """An event's JSON as stored (`"position":null` last) with its position: its model_dump_json."""
    return wire[:-5] + str(position).encode() + b"}"


def _row_to_event(row: asyncpg.Record) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        type=row["type"],
        schema_version=row["schema_version"],
        category=row["category"],
        stream_id=row["stream_id"],
        version=row["version"],
        occurred_at=row["occurred_at"],
        metadata=Metadata.model_validate_json(row["metadata"]),
        data=json.loads(row["data"]),
        position=row["position"],
    )


EVENT_COLUMNS = (
    "position, event_id, category, stream_id, version, type, schema_version, occurred_at,"
    " metadata, data"
)


class EventStore:
    """Appends and reads events of one service's schema."""

    def __init__(
        self, pool: asyncpg.Pool, *,
        on_appended: Callable[[list[EventEnvelope]], None] | None = None,
        on_appended_json: Callable[[dict[int, bytes]], None] | None = None,
        unique_errors: Mapping[str, Callable[[], Exception]] | None = None,
        keys: KeyProvider | None = None, encrypt: bool = True, redact_erased: bool = False,
    ) -> None:
        self.pool = pool
        # personal data (shared.personal_data): encrypted on append when `encrypt`, and read
        # back in plaintext (or "[erased]") by every load, with these keys
        self.keys = keys
        self.encrypt = encrypt and keys is not None
        self.redact_erased = redact_erased  # an erased subject's values written "[erased]", not refused
        # told of every committed append (events with their positions), e.g. the outbox relay
        self.on_appended = on_appended
        # told, with it, each appended event's JSON (its model_dump_json) by position: the relay
        # publishes those bytes instead of serializing the event a second time
        self.on_appended_json = on_appended_json
        # a unique constraint of the service's read-model tables -> the domain error it means
        self.unique_errors = dict(unique_errors or {})
        # appends in flight that will tell `on_appended` (the outbox relay waits for their hints)
        self.appending: set[int] = set()
        self._tokens = itertools.count()

    async def load_as_of(self, stream_id: str, at: datetime) -> list[EventEnvelope]:
        """Events of one stream that occurred up to `at` (inclusive), in version order."""
        rows = await self.pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND occurred_at <= $2"
            " ORDER BY version",
            stream_id, at,
        )
        return await self._open([_row_to_event(r) for r in rows])

    async def _open(self, events: list[EventEnvelope]) -> list[EventEnvelope]:
        return events if self.keys is None else await decrypt_events(events, self.keys)

    async def load(self, stream_ids: Sequence[str]) -> dict[str, list[EventEnvelope]]:
        """All events of these streams, each list in version order."""
        out: dict[str, list[EventEnvelope]] = {s: [] for s in stream_ids}
        rows = await self.pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[])"
            " ORDER BY stream_id, version",
            list(stream_ids),
        )
        for event in await self._open([_row_to_event(row) for row in rows]):
            out[event.stream_id].append(event)
        return out

    async def load_until(self, stream_id: str, position: int) -> list[EventEnvelope]:
        """Events of one stream up to a global position."""
        rows = await self.pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND position <= $2"
            " ORDER BY version",
            stream_id, position,
        )
        return await self._open([_row_to_event(r) for r in rows])

    async def stored_replies_with_fingerprints(
        self, command_ids: Sequence[str]
    ) -> dict[str, StoredReply]:
        """First replies of commands already handled, each with its request's fingerprint."""
        if not command_ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT command_id, reply, fingerprint FROM commands WHERE command_id = ANY($1::text[])",
            list(command_ids),
        )
        return {r["command_id"]: StoredReply(r["reply"].encode(), r["fingerprint"]) for r in rows}

    async def append(
        self,
        events: Sequence[EventEnvelope],
        *,
        replies: Sequence[tuple[str, str] | tuple[str, str, str | None]] = (),
        fragments: Sequence[Fragment] = (),
        conn: asyncpg.Connection | None = None,
    ) -> list[int]:
        """Append events (+ command replies + read-model fragments) atomically; return positions.

        A reply is `(command_id, reply)` or `(command_id, reply, fingerprint)`; the latter needs a
        `commands` table with a `fingerprint` column.
        A unique violation raises `ConcurrencyError` (a version taken), `DuplicateCommand` (a
        command id taken) or the domain error `unique_errors` names for its constraint.
        With `conn`, the statement runs in the caller's transaction (a bulk write of many
        statements); `on_appended` is then not told, since the caller may still roll back:
        the relay reads those events from the outbox rows once they are committed.
        Personal values are encrypted here, the one place events are written (SubjectErased
        when one belongs to an erased subject).
        """
        new_keys: list[DataKey] = []
        if self.encrypt:
            assert self.keys is not None  # new keys go into this statement, unless in a caller's transaction
            events = await encrypt_events(list(events), self.keys, redact_erased=self.redact_erased,
                                          new_keys=new_keys if conn is None else None)
        parts: list[str] = []
        args: list[Any] = []

        def add(template: str, values: Sequence[Any]) -> None:
            placeholders = [f"${len(args) + i + 1}" for i in range(len(values))]
            parts.append(template.format(*placeholders))
            args.extend(values)

        # each event serialized once: the append's document and (position filled in) the relay's
        wire = [_EVENT_JSON(e) for e in events]
        add(_EVENTS, [(b"[" + b",".join(wire) + b"]").decode()])
        parts.append(_OUTBOX)
        if replies:
            rows_json = orjson.dumps([dict(zip(_REPLY_KEYS, r, strict=False)) for r in replies]).decode()
            add(_COMMANDS_FINGERPRINTED if any(len(r) > 2 for r in replies) else _COMMANDS, [rows_json])
        for i, frag in enumerate(fragments):
            add(f"f{i} AS ({frag.sql})", frag.args)
        if new_keys and isinstance(self.keys, DeferredKeys):
            key_sql, key_args = self.keys.store_fragment(new_keys)
            add(f"k AS ({key_sql})", key_args)
        sql = "WITH " + ", ".join(parts) + " SELECT position FROM e ORDER BY position"
        token = next(self._tokens)
        if self.on_appended is not None and conn is None:
            self.appending.add(token)
        try:
            return await self._append(sql, args, conn, events, wire, new_keys)
        finally:
            self.appending.discard(token)  # after on_appended: its hints are in

    async def _append(self, sql: str, args: list[Any], conn: asyncpg.Connection | None,
                      events: Sequence[EventEnvelope], wire: list[bytes],
                      new_keys: list[DataKey]) -> list[int]:
        """Run the statement (unique violations raised as their errors), then tell the listeners."""
        try:
            rows = await (conn or self.pool).fetch(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_pkey":
                raise ConcurrencyError(str(exc)) from exc
            if exc.constraint_name == "commands_pkey":
                raise DuplicateCommand(str(exc)) from exc
            if exc.constraint_name in DATA_KEY_CONSTRAINTS:  # a key made meanwhile (or erased): retry
                if isinstance(self.keys, DeferredKeys):
                    self.keys.conflicted(new_keys)
                raise ConcurrencyError(str(exc)) from exc
            if (error := self.unique_errors.get(exc.constraint_name or "")) is not None:
                raise error() from exc
            raise
        positions = [r["position"] for r in rows]
        if new_keys and isinstance(self.keys, DeferredKeys):
            self.keys.remember(new_keys)
        if self.on_appended is not None and conn is None:
            self.on_appended(
                [e.model_copy(update={"position": p}) for e, p in zip(events, positions, strict=True)]
            )
            if self.on_appended_json is not None:
                self.on_appended_json({p: published_json(w, p) for w, p in zip(wire, positions, strict=True)
                                       if w.endswith(_NULL_POSITION)})
        return positions
