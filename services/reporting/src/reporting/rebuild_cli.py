"""`python -m reporting rebuild audit|summaries|all`: rebuild projections, with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import asyncpg
import structlog
import uvloop
from shared.logging import configure_logging
from shared.migrations import migrate
from shared.progress import ProgressBar
from shared.stack_file import tool_nats

from reporting.bootstrap import PLUMBING, all_projections
from reporting.projections.rebuild import RebuildBusy, Rebuilder, RebuildResult
from reporting.projections.rebuild_guards import RebuildRefused
from reporting.projections.split import Connect
from reporting.settings import ReportingSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")


def parser(prog: str = "patchbay rebuild") -> argparse.ArgumentParser:
    """The command line of `rebuild`."""
    names = [p.name for p in all_projections()]
    cli = argparse.ArgumentParser(
        prog=prog,
        description="Replay the streams into fresh tables and switch over atomically; "
                    "the old tables keep answering until then.",
    )
    cli.add_argument("projection", choices=[*names, "all"], help="what to rebuild")
    cli.add_argument("--batch", type=int, default=5000, help="messages per fetch and write")
    cli.add_argument("--no-progress", action="store_true", help="no progress bar (a log line every 5 s)")
    cli.add_argument("--processes", type=int, choices=(1, 2), default=1,
                     help="2: a second process replays the upper half of a long stream (audit; pays"
                          " only with an idle core: docs/performance.md)")
    cli.add_argument("--allow-shrink", action="store_true",
                     help="switch over even when the streams lost history or the rebuilt tables are smaller")
    return cli


async def schema_owner(dsn: str) -> str | None:
    """The role owning the reporting schema, when the URL's user may act as it (an operator's admin URL).

    The rebuilt tables are then made as that role, so the service (connected as it) can use them.
    """
    conn = await asyncpg.connect(dsn)
    try:
        owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
                                    PLUMBING.schema)
        if owner is None or owner == await conn.fetchval("SELECT current_user"):
            return None
        return str(owner) if await conn.fetchval("SELECT pg_has_role($1, 'MEMBER')", owner) else None
    finally:
        await conn.close()


async def rebuild(
    settings: ReportingSettings, names: Sequence[str], *, batch: int = 5000, progress: bool = True,
    allow_shrink: bool = False, processes: int = 1,
) -> list[RebuildResult]:
    """Rebuild the named projections one after the other.

    The replays read the streams with consumers of their own: an operator's right, so NATS is
    reached as the provisioner (tool_nats; docs/adr/0016), the database as the reporting service.
    """
    await migrate(settings.database_url, PLUMBING.schema, PLUMBING.migrations)
    owner = await schema_owner(settings.database_url)
    server_settings = {"search_path": PLUMBING.schema, **({"role": owner} if owner else {})}
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4,
                                     server_settings=server_settings)
    split = Connect(settings.nats_url, settings.database_url, server_settings) if processes > 1 else None
    try:
        nc = await tool_nats(settings.nats_url)
    except BaseException:
        await pool.close()
        raise
    results = []
    try:
        for projection in all_projections():
            if projection.name not in names:
                continue
            with ProgressBar(f"rebuild {projection.name}", "ev", shown=progress, log_every_s=5.0) as bar:
                rebuilder = Rebuilder(pool, nc.jetstream(), projection, batch=batch, progress=bar,
                                      allow_shrink=allow_shrink, split=split)
                results.append(await rebuilder.run())
                for warning in rebuilder.warnings:
                    print(f"rebuild {projection.name}: switched over although {warning} (--allow-shrink)",
                          file=sys.stderr)
    finally:
        await nc.drain()
        await pool.close()
    return results


def run_tuned(main: Coroutine[Any, Any, T]) -> T:
    """Run batch work as the services run: uvloop, and a garbage collector that runs rarely."""
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main(argv: Sequence[str] | None = None, prog: str = "patchbay rebuild") -> int:
    """Entry point of `patchbay rebuild` (and `python -m reporting rebuild`)."""
    args = parser(prog).parse_args(argv)
    settings = ReportingSettings()
    configure_logging("reporting-rebuild", level=settings.log_level, fmt=settings.log_format)
    names = [p.name for p in all_projections()] if args.projection == "all" else [args.projection]
    try:
        results = run_tuned(rebuild(settings, names, batch=args.batch, progress=not args.no_progress,
                                    allow_shrink=args.allow_shrink, processes=args.processes))
    except RebuildBusy as exc:
        print(f"rebuild: {exc}", file=sys.stderr)
        return 2
    except RebuildRefused as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr)
        return 4
    for r in results:
        print(f"{r.projection}: {r.events:,} events in {r.seconds:.1f} s ({r.rate:,.0f}/s),"
              f" {r.skipped} malformed skipped; switched over")
    return 0
