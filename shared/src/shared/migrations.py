"""Migrations: ordered, checksummed plain-SQL files, one schema per service.

The tables the kernel reads (the event store and its outbox, the message outbox) come from one
place: a migration line `-- kernel: event_store` (or `message_outbox`) is replaced, when the file
is applied, by that block of `KERNEL_BLOCKS`. The checksum stays the file's own text, so a block
is frozen once released: a changed shape is a new block (`event_store_v2`), added by a new
migration. Migrations written before the blocks existed spell the same tables out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

FILE_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")
KERNEL_LINE = re.compile(r"^-- kernel: (\w+)[ \t]*$", re.MULTILINE)

_EVENT_STORE = """\
-- kernel block event_store: the tables shared.eventstore and shared.outbox_relay read
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    category       text        NOT NULL,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    metadata       jsonb       NOT NULL,
    data           jsonb       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (stream_id, version)
);
CREATE TABLE outbox (position bigint PRIMARY KEY);
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
CREATE TABLE commands (
    command_id  text PRIMARY KEY,
    reply       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    fingerprint text
);
"""

_MESSAGE_OUTBOX = """\
-- kernel block message_outbox: the table shared.message_outbox writes and relays
CREATE TABLE message_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text        NOT NULL,
    msg_id     text        NOT NULL,
    headers    jsonb       NOT NULL DEFAULT '{}',
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION notify_message_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('message_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER message_outbox_notify AFTER INSERT ON message_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_message_outbox();
"""

# frozen once released (see the module's docstring); tests pin their checksums
KERNEL_BLOCKS: dict[str, str] = {"event_store": _EVENT_STORE, "message_outbox": _MESSAGE_OUTBOX}


def event_store_ddl() -> str:
    """The event store, its outbox and the command replies, as the kernel expects them."""
    return KERNEL_BLOCKS["event_store"]


def message_outbox_ddl() -> str:
    """The outbox of messages that are not events, with its NOTIFY trigger."""
    return KERNEL_BLOCKS["message_outbox"]


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def expanded(self) -> str:
        """The SQL to run: the file with each `-- kernel: NAME` line replaced by that block."""
        return KERNEL_LINE.sub(lambda m: KERNEL_BLOCKS[m.group(1)], self.sql)


class MigrationError(RuntimeError):
    """A migration that was applied has changed, or the files are misnumbered."""


def discover(directory: Path) -> list[Migration]:
    """Read `NNNN_name.sql` files in number order; refuse gaps and duplicates."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
        unknown = set(KERNEL_LINE.findall(found[-1].sql)) - KERNEL_BLOCKS.keys()
        if unknown:
            raise MigrationError(f"{path}: no kernel block {sorted(unknown)}; known: {sorted(KERNEL_BLOCKS)}")
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise MigrationError(f"{directory}: migrations must be numbered 1..N without gaps: {numbers}")
    return found


async def migrate(dsn: str, schema: str, directory: Path) -> list[str]:
    """Apply the pending migrations of one schema; return the names applied."""
    migrations = discover(directory)
    applied_now: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        # one migrator per schema at a time, across replicas
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        # a service's own role may find its schema made for it (docs/security.md, PostgreSQL):
        # it then needs no right to create schemas in the database
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " number int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch("SELECT number, name, checksum FROM schema_migrations")
        done = {r["number"]: r for r in rows}
        for m in migrations:
            if m.number in done:
                if done[m.number]["checksum"] != m.checksum:
                    raise MigrationError(
                        f"{schema}/{m.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.expanded)
                await conn.execute(
                    "INSERT INTO schema_migrations (number, name, checksum) VALUES ($1, $2, $3)",
                    m.number, m.name, m.checksum,
                )
            applied_now.append(m.name)
            log.info("migration_applied", schema=schema, migration=m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrate:{schema}")
        await conn.close()
    return applied_now
