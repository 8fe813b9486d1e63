"""`patchbay rebuild ledger` (`python -m customer rebuild ledger`): the ledger rebuilt, a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence

import asyncpg
import structlog
import uvloop
from shared.logging import configure_logging
from shared.migrations import migrate
from shared.progress import ProgressBar
from shared.stack_file import tool_nats

from customer.bootstrap import MIGRATIONS, SCHEMA, CustomerSettings
from customer.projections.ledger_rebuild import (
    LedgerRebuildBusy,
    LedgerRebuilder,
    LedgerRebuildRefused,
    LedgerRebuildResult,
)

log = structlog.get_logger(__name__)


def parser(prog: str = "patchbay rebuild ledger") -> argparse.ArgumentParser:
    """The command line of the ledger's rebuild."""
    cli = argparse.ArgumentParser(
        prog=prog, description="Replay CALLS and the credit notes into fresh ledger tables and switch over "
        "atomically; the old tables (and the dial check) keep answering until then.")
    cli.add_argument("--batch", type=int, default=5000, help="messages per read and write")
    cli.add_argument("--no-progress", action="store_true", help="no progress bar (a log line every 5 s)")
    cli.add_argument("--allow-shrink", action="store_true",
                     help="switch over even when the streams lost history or the rebuilt tables are smaller")
    return cli


async def schema_owner(conn: asyncpg.Connection) -> str | None:
    """The customer schema's owner, when the URL's user may act as it (an operator's admin URL)."""
    owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", SCHEMA)
    if owner is None or owner == await conn.fetchval("SELECT current_user"):
        return None
    return str(owner) if await conn.fetchval("SELECT pg_has_role($1, 'MEMBER')", owner) else None


async def rebuild(
    settings: CustomerSettings, *, batch: int = 5000, progress: bool = True, allow_shrink: bool = False,
) -> LedgerRebuildResult:
    """Rebuild the ledger: NATS as the provisioner (a tool, docs/adr/0016), the database's customer schema."""
    await migrate(settings.database_url, SCHEMA, MIGRATIONS)
    conn = await asyncpg.connect(settings.database_url)
    try:
        owner = await schema_owner(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=3, server_settings={
        "search_path": SCHEMA, **({"role": owner} if owner else {})})
    # no log line of its own: the ledger rebuilder logs its progress every 5 s
    bar = ProgressBar("rebuild ledger", "msg", shown=progress)

    try:
        nc = await tool_nats(settings.nats_url)
        try:
            return await LedgerRebuilder(pool, nc.jetstream(), batch=batch, progress=bar,
                                         allow_shrink=allow_shrink).run()
        finally:
            await nc.drain()
    finally:
        bar.close()
        await pool.close()


def main(argv: Sequence[str] | None = None, prog: str = "patchbay rebuild ledger") -> int:
    """Entry point: 0 switched over, 2 another rebuild runs, 4 refused (history would be lost)."""
    args = parser(prog).parse_args(argv)
    settings = CustomerSettings()
    configure_logging("customer-ledger-rebuild", level=settings.log_level, fmt=settings.log_format)
    gc.set_threshold(50_000, 20, 20)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            r = runner.run(rebuild(settings, batch=args.batch, progress=not args.no_progress,
                                   allow_shrink=args.allow_shrink))
    except LedgerRebuildBusy as exc:
        print(f"rebuild: {exc}", file=sys.stderr)
        return 2
    except LedgerRebuildRefused as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr)
        return 4
    for warning in r.warnings:
        print(f"rebuild ledger: switched over although {warning} (--allow-shrink)", file=sys.stderr)
    print(f"ledger: {r.messages:,} messages in {r.seconds:.1f} s ({r.rate:,.0f}/s), {r.records:,} calls,"
          f" {r.notes:,} credit notes, {r.skipped} malformed skipped, {r.announced:,} customers' totals"
          " changed; switched over")
    return 0
