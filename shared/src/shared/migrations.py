"""Migrations: ordered, checksummed plain-SQL files, one schema per service."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

FILE_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


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
                await conn.execute(m.sql)
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
