"""Kernel blocks of migrations: the event store and the message outbox come from one place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg
import pytest
from devtools.testing.plugin import MakeDatabase
from shared.migrations import KERNEL_BLOCKS, MigrationError, discover, event_store_ddl, migrate

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = ROOT / "services" / "customer" / "src" / "customer" / "migrations"

# a released block never changes (applied migrations are not checked against it again): a new
# shape is a new block. Changing one of these on purpose means you are breaking that rule.
PINNED = {
    "event_store": "9ae7d8567421cfe1777befa86824c917ab91689a1baf853565223b96c54096c1",
    "message_outbox": "a32eb98a4b24350901c9c5518129e992cac766340a12cea6404b28cbcdd89ce9",
}


def test_released_blocks_are_frozen() -> None:
    got = {name: hashlib.sha256(sql.encode()).hexdigest() for name, sql in KERNEL_BLOCKS.items()}
    assert got == PINNED


def test_a_kernel_line_is_expanded_and_the_checksum_stays_the_files(tmp_path: Path) -> None:
    text = "-- the probe's events\n-- kernel: event_store\nCREATE TABLE extra (id int);\n"
    (tmp_path / "0001_events.sql").write_text(text)
    [migration] = discover(tmp_path)
    assert migration.checksum == hashlib.sha256(text.encode()).hexdigest()
    assert event_store_ddl() in migration.expanded
    assert "-- kernel: event_store" not in migration.expanded
    assert migration.expanded.endswith("CREATE TABLE extra (id int);\n")


def test_an_unknown_block_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_events.sql").write_text("-- kernel: event_stor\n")
    with pytest.raises(MigrationError, match="event_stor"):
        discover(tmp_path)


async def shape(conn: asyncpg.Connection, schema: str) -> dict[str, object]:
    """Columns, constraints and triggers of the kernel's tables in one schema."""
    tables = ["events", "outbox", "commands", "message_outbox"]
    columns = await conn.fetch(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity"
        " FROM information_schema.columns WHERE table_schema = $1 AND table_name = ANY($2::text[])"
        " ORDER BY table_name, ordinal_position", schema, tables)
    constraints = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1"
        " ORDER BY 2", schema)
    triggers = await conn.fetch(
        "SELECT tgname, r.relname AS tbl, pg_get_triggerdef(t.oid) AS def FROM pg_trigger t"
        " JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace"
        " WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY 1", schema)
    return {
        "columns": [tuple(r) for r in columns if r["table_name"] in tables],
        "constraints": sorted((r["tbl"].split(".")[-1], r["conname"], r["def"]) for r in constraints
                              if r["tbl"].split(".")[-1] in tables),
        "triggers": [(r["tgname"], r["def"].replace(f"{schema}.", "")) for r in triggers
                     if r["tbl"] in tables and r["tgname"] not in SERVICE_TRIGGERS],
    }


# triggers a service's own later migrations put on the kernel's tables (customer 0010: the ledger)
SERVICE_TRIGGERS = frozenset({"ledger_from_events"})


@pytest.mark.servers
async def test_the_blocks_make_what_the_services_migrations_made(
    make_database: MakeDatabase, tmp_path: Path,
) -> None:
    dsn = await make_database()
    (tmp_path / "0001_kernel.sql").write_text("-- kernel: event_store\n-- kernel: message_outbox\n")
    await migrate(dsn, "kernel", tmp_path)
    await migrate(dsn, "customer", CUSTOMER)
    conn = await asyncpg.connect(dsn)
    try:
        kernel, customer = await shape(conn, "kernel"), await shape(conn, "customer")
        assert kernel["columns"] and kernel["constraints"] and kernel["triggers"]
        assert kernel == customer
    finally:
        await conn.close()
