"""What every projection is: its tables, its streams, how it decodes and writes a batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from shared.consumer import ConsumerSpec
from shared.partitions import stored_partition
from shared.streams import partition_key_of

Item = TypeVar("Item")
NEXT = "__next"


@dataclass(frozen=True)
class Source:
    """One stream a projection reads, with the subjects it takes from it.

    `whole`: the subjects are every message of the stream, so a replay reads it unfiltered
    (JetStream delivers a filtered read of a stream with many subjects ~5x more slowly here:
    29k against 155k messages/s on CALLS).
    """

    stream: str
    subjects: tuple[str, ...]
    whole: bool = False
    ack_all: bool = False  # its live durables ack a batch with one ack (shared.consumer.ConsumerSpec)

    @property
    def replay_subjects(self) -> tuple[str, ...]:
        """What a rebuild reads: nothing named (the whole stream), or the subjects."""
        return () if self.whole else self.subjects


class Tables(dict[str, str]):
    """Logical table name -> the physical one (live, or the `__next` copy a rebuild fills)."""

    @classmethod
    def live(cls, names: Sequence[str]) -> Tables:
        """The tables that answer queries now."""
        return cls({n: n for n in names})

    @classmethod
    def next(cls, names: Sequence[str]) -> Tables:
        """The side copies a rebuild writes."""
        return cls({n: n + NEXT for n in names})


class Projection(ABC, Generic[Item]):
    """A read model: decodes messages into items and writes a batch of them in ONE statement.

    One statement is one transaction: the rows and the stream's checkpoint commit together, and
    a rebuild's rename switch-over sees every batch wholly before or wholly after it. Writes are
    idempotent by natural key (event id, call id, payment id), so a redelivered message, or one
    seen by both a rebuild and the live consumer, counts once.
    """

    name: str
    tables: tuple[str, ...]
    checkpoint_table: str
    sources: tuple[Source, ...]
    # the bulk load keeps the lowest sequence of a duplicate key whichever write came first (its
    # tables are keyed after the load, bulk_finish), so a rebuild may replay a stream's halves in
    # two processes at once (projections/split.py)
    bulk_split = False
    # tables a rebuild's first replay loads without their primary key: `bulk_finish` removes the
    # duplicates and adds it (`key_after_load`: one sorted build instead of a B-tree insert per row)
    bulk_unkeyed: tuple[str, ...] = ()
    # tables of current state that later messages shrink (a call's live row goes when its record
    # comes): a rebuild caught up past a lagging live partition rightly has fewer rows there, so
    # the shrink guard (rebuild_guards.py) compares the history tables only
    state_tables: tuple[str, ...] = ()

    def consumer_spec(
        self, source: Source, prefix: str = "reporting", ack_wait_s: float = 30.0
    ) -> ConsumerSpec:
        """The durable consumer that keeps this projection live on one stream."""
        return ConsumerSpec(
            stream=source.stream, durable=f"{prefix}-{self.name}-{source.stream.lower()}",
            filter_subjects=list(source.subjects), ack_wait_s=ack_wait_s, ack_all=source.ack_all,
        )

    @abstractmethod
    def decode(self, stream: str, seq: int, subject: str, data: bytes) -> Item:
        """One message as an item; raise ValueError (or ValidationError) for a malformed one."""

    @abstractmethod
    async def write(
        self, conn: asyncpg.Connection | asyncpg.Pool, tables: Tables, stream: str,
        items: Sequence[Item], last_seq: int,
    ) -> int | None:
        """Write a batch and move the stream's checkpoint to last_seq, in one statement."""

    def bulk_decode(self, stream: str, seq: int, subject: str, data: bytes) -> Any:
        """One message as `bulk_write` takes it (a projection may go straight to its COPY row)."""
        return self.decode(stream, seq, subject, data)

    async def bulk_write(
        self, conn: asyncpg.Connection, tables: Tables, stream: str, items: Sequence[Any], last_seq: int,
    ) -> None:
        """A rebuild's first replay, into tables that only rebuilds write until `bulk_finish`:
        a projection may load rows the cheap way (COPY) and leave derived tables to the end.
        The items are `bulk_decode`'s."""
        await self.write(conn, tables, stream, items, last_seq)

    async def bulk_finish(self, conn: asyncpg.Connection, tables: Tables) -> None:
        """After the first replay: derive what `bulk_write` left out, key the `bulk_unkeyed` tables
        (normal writes, which need the keys, follow)."""

    def checkpoint_sql(self, tables: Tables, stream_arg: int, seq_arg: int) -> str:
        """A CTE body that moves a checkpoint forward (never back: redeliveries come late)."""
        t = tables[self.checkpoint_table]
        return (
            f"INSERT INTO {t} (stream, seq) VALUES (${stream_arg}, ${seq_arg})"
            f" ON CONFLICT (stream) DO UPDATE SET seq = GREATEST({t}.seq, excluded.seq)"
        )


PARTITION_MARK = "#"  # a live partition's checkpoint row: `<stream>#<partition>`


def checkpoint_key(stream: str, subject: str) -> str:
    """The checkpoint row a live partition's batch moves (its own: no waiting on another's commit)."""
    # one row per partition: with one row per stream, the 8 partitions' transactions queued on its
    # row lock, each behind the previous one's commit (docs/performance.md, issue 21)
    partition = stored_partition(subject, partition_key_of(stream))  # either layout (ADR 0026)
    return stream if partition is None else f"{stream}{PARTITION_MARK}{partition}"


async def checkpoints(conn: Any, projection: Projection[Any], tables: Tables) -> dict[str, int]:
    """The checkpoint (last stream sequence written) of each stream: the highest of its rows."""
    # the stream's own row (rebuilds, older releases) and one per live partition
    rows = await conn.fetch(
        f"SELECT split_part(stream, '{PARTITION_MARK}', 1) AS stream, max(seq) AS seq"
        f" FROM {tables[projection.checkpoint_table]} GROUP BY 1"
    )
    return {r["stream"]: r["seq"] for r in rows}


async def primary_key(conn: Any, table: str) -> str | None:
    """The primary key's columns of a table, quoted and in order (None: it has none)."""
    key: str | None = await conn.fetchval(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)"
        " FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary", table,
    )
    return key


async def key_after_load(conn: asyncpg.Connection, live: str, loaded: str, dedupe: str, *args: Any) -> None:
    """Give `loaded` the primary key of `live`; when its rows repeat a key, delete the copies by
    `dedupe` (a DELETE keeping the row live keeps) first. Without duplicates, one index build."""
    key = await primary_key(conn, live)
    if key is None:
        return
    try:
        async with conn.transaction():
            await conn.execute(f"ALTER TABLE {loaded} ADD PRIMARY KEY ({key})")
    except asyncpg.UniqueViolationError:
        async with conn.transaction():
            await conn.execute(dedupe, *args)
            await conn.execute(f"ALTER TABLE {loaded} ADD PRIMARY KEY ({key})")
