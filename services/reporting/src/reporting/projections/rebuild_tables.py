"""The `__next` copies a rebuild fills: made like the live tables, indexed after the load, switched in.

A copy has the live table's columns, defaults, constraints, statistics targets and storage
options, and its primary key unless the projection keys it after its first replay
(`Projection.bulk_unkeyed`, ADR 27). Its secondary indexes are built once the rows are in
(faster than row by row). Autovacuum is off on a copy while it fills (it would vacuum and analyze
a table still growing: the rebuild analyzes once after the load); the switch-over gives the
table live's setting back, and autovacuum takes it from there.
"""

from __future__ import annotations

import re
from typing import Any

from reporting.projections.base import NEXT, primary_key

_AUTOVACUUM = "autovacuum_enabled="


async def create_next(conn: Any, table: str, keyed: bool) -> tuple[list[str], list[str]]:
    """Make `<table>__next`; return its secondary indexes' statements and live's storage options."""
    await conn.execute(f"DROP TABLE IF EXISTS {table}{NEXT}")
    await conn.execute(f"CREATE TABLE {table}{NEXT} (LIKE {table} INCLUDING DEFAULTS"
                       " INCLUDING CONSTRAINTS INCLUDING GENERATED)")
    # LIKE leaves per-column statistics targets behind: ANALYZE then does what live's does
    for column, target in await conn.fetch(
        "SELECT attname, attstattarget FROM pg_attribute WHERE attrelid = $1::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0", table,
    ):
        await conn.execute(f'ALTER TABLE {table}{NEXT} ALTER COLUMN "{column}" SET STATISTICS {int(target)}')
    options: list[str] = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = $1::regclass",
                                             table) or []
    kept = [o.split("=", 1) for o in options if not o.startswith(_AUTOVACUUM)]
    settings = ", ".join([*(f"{k} = '{v}'" for k, v in kept), "autovacuum_enabled = false"])
    await conn.execute(f"ALTER TABLE {table}{NEXT} SET ({settings})")
    key = await primary_key(conn, table)
    if key and keyed:  # the writes' ON CONFLICT needs it from the first row
        await conn.execute(f"ALTER TABLE {table}{NEXT} ADD PRIMARY KEY ({key})")
    indexes = []
    for name, sql in await conn.fetch(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = $1::regclass AND NOT i.indisprimary", table,
    ):
        renamed = name.replace(table, table + NEXT, 1) if name.startswith(table) else name + NEXT
        pattern = rf"^CREATE (UNIQUE )?INDEX {re.escape(name)} ON (ONLY )?((\S+\.)?){re.escape(table)} "
        indexes.append(re.sub(pattern, rf"CREATE \1INDEX {renamed} ON \3{table}{NEXT} ", sql))
    return indexes, options


async def switch_in(conn: Any, table: str, options: list[str]) -> None:
    """Replace the live table by its copy (inside the switch-over's transaction and lock)."""
    await conn.execute(f"DROP TABLE {table}")
    await conn.execute(f"ALTER TABLE {table}{NEXT} RENAME TO {table}")
    autovacuum = [o for o in options if o.startswith(_AUTOVACUUM)]
    await conn.execute(f"ALTER TABLE {table} SET ({autovacuum[0]})" if autovacuum
                       else f"ALTER TABLE {table} RESET (autovacuum_enabled)")
    for (index,) in await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", table,
    ):
        if index.startswith(table + NEXT):
            await conn.execute(f'ALTER INDEX "{index}" RENAME TO "{table + index[len(table + NEXT):]}"')
