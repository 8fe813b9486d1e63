"""`patchbay restore DIR`: a backup onto fresh servers (an empty database, no streams with messages).

1. PostgreSQL from the dump (`pg_restore`, one transaction);
2. each stream at its old sequences (see `stream_files`); of an event store's stream (subjects
   `events.<category>.…` of a category some schema's `events` table holds) only the events the
   dump holds are kept, the others become gaps (they were committed after the dump);
3. the events the dump holds but the streams lack (published after the streams were read, or
   never) go back into their schema's outbox: the relays publish them at start;
4. the sealing key and admin token into the data dir (the key must match the dump's sealed
   settings: a different key already there is refused).
Then `make run` and `patchbay rebuild all`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from shared.stack_file import Located, redact, tool_nats
from tqdm import tqdm

from patchbay_cli import pg_tools
from patchbay_cli.stream_files import StoredMessage, load_stream

EVENT_STORES = """
SELECT e.table_schema FROM information_schema.tables e
JOIN information_schema.tables o ON o.table_schema = e.table_schema AND o.table_name = 'outbox'
WHERE e.table_name = 'events' ORDER BY 1
"""


def parser() -> argparse.ArgumentParser:
    """The command line of `patchbay restore`."""
    cli = argparse.ArgumentParser(prog="patchbay restore", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("dir", type=Path, help="a directory written by `patchbay backup`")
    cli.add_argument("--replicas", type=int, default=None,
                     help="stream replicas (default: PATCHBAY_STREAM_REPLICAS, "
                     "else the running stack's, else 1)")
    cli.add_argument("--streams-only", action="store_true",
                     help="restore the streams alone, onto servers whose database is kept "
                     "(moving the streams of a data dir into a NATS cluster: docs/operations.md)")
    cli.add_argument("--no-progress", action="store_true", help="no progress bars")
    return cli


class RestoreRefused(RuntimeError):
    """The target is not fresh, or the backup does not fit it."""


async def _check_fresh(
    conn: asyncpg.Connection, js: JetStreamContext, names: list[str], database: bool,
) -> None:
    tables = await conn.fetchval("SELECT count(*) FROM information_schema.tables WHERE table_schema"
                                 " NOT IN ('pg_catalog', 'information_schema')")
    if database and tables:
        raise RestoreRefused(f"the database already has {tables} tables: restore onto a fresh one "
                             "(a new data dir with `make servers`, or an empty database)")
    for name in names:
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            continue
        if info.state.messages or info.state.last_seq:
            raise RestoreRefused(f"stream {name} already holds messages: restore onto fresh NATS servers")
        await js.delete_stream(name)  # an empty stream made at start (declared config): made anew


async def _event_stores(conn: asyncpg.Connection) -> dict[str, tuple[set[str], dict[str, int]]]:
    """schema -> (its event categories, event id -> position) of every event store in the database."""
    stores = {}
    for (schema,) in await conn.fetch(EVENT_STORES):
        rows = await conn.fetch(f'SELECT position, event_id::text AS id, category FROM "{schema}".events')
        stores[schema] = ({r["category"] for r in rows}, {r["id"]: r["position"] for r in rows})
    return stores


def _keeper(stores: dict[str, tuple[set[str], dict[str, int]]]) -> Any:
    categories = set().union(*(c for c, _ in stores.values())) if stores else set()
    known = set().union(*(ids.keys() for _, ids in stores.values())) if stores else set()

    def keep(msg: StoredMessage) -> bool:
        tokens = msg.subject.split(".")
        if len(tokens) < 2 or tokens[0] != "events" or tokens[1] not in categories:
            return True
        msg_id = (msg.headers or {}).get("Nats-Msg-Id")
        return msg_id is None or msg_id in known
    return keep


def _replicas(given: int | None, located: Located) -> int:
    if given:
        return given
    if env := os.environ.get("PATCHBAY_STREAM_REPLICAS"):
        return int(env)
    return int(located.info.get("stream_replicas") or 1)


def _restore_files(backup_dir: Path, data_dir: Path, files: list[str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        target, value = data_dir / name, (backup_dir / name).read_text().strip()
        if target.exists():
            if target.read_text().strip() != value:
                raise RestoreRefused(f"{target} holds another {name}: move it away (the backup's must "
                                     "be used, or its sealed settings cannot be opened)")
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")


async def restore(
    located: Located, backup_dir: Path, *, replicas: int, progress: bool = True, streams_only: bool = False,
) -> dict[str, Any]:
    """Restore the backup; return what was done."""
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    names = [s["name"] for s in manifest["streams"]]
    conn = await asyncpg.connect(located.database_url, timeout=10)
    nc = await tool_nats(located.nats_url, data_dir=located.data_dir)
    try:
        js = nc.jetstream(timeout=30)
        await _check_fresh(conn, js, names, database=not streams_only)
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        if streams_only:
            print(f"PostgreSQL {redact(located.database_url)}: kept as it is", file=sys.stderr, flush=True)
        else:
            print(f"PostgreSQL {redact(located.database_url)}: pg_restore ...", file=sys.stderr, flush=True)
            dump = str(backup_dir / manifest["postgres"])
            await asyncio.to_thread(pg_tools.run, "pg_restore", "--no-owner", "--no-privileges",
                                    "--single-transaction", "--exit-on-error",
                                    "--dbname", located.database_url, dump, server_major=server_major)
        stores = await _event_stores(conn)
        keep = _keeper(stores)
        published: set[str] = set()
        restored: dict[str, int] = {}
        for summary in manifest["streams"]:
            stream_summary = json.loads((backup_dir / "streams" / f"{summary['name']}.json").read_text())
            bar = tqdm(desc=f"stream {summary['name']}", unit="msg", disable=not progress, file=sys.stderr,
                       total=summary["messages"], dynamic_ncols=True)

            def show(done: int, total: int, bar: tqdm = bar) -> None:
                bar.n = done
                bar.refresh()

            try:
                count, ids = await load_stream(js, backup_dir / "streams", stream_summary, replicas=replicas,
                                               keep=keep, progress=show)
            finally:
                bar.close()
            restored[summary["name"]] = count
            published |= ids
            print(f"stream {summary['name']}: {count:,} of {summary['messages']:,} messages restored",
                  file=sys.stderr, flush=True)
        requeued = {}
        for schema, (_, positions) in stores.items():
            missing = [position for event_id, position in positions.items() if event_id not in published]
            if missing:
                await conn.execute(f'INSERT INTO "{schema}".outbox (position) SELECT unnest($1::bigint[])'
                                   " ON CONFLICT DO NOTHING", sorted(missing))
            requeued[schema] = len(missing)
    finally:
        await nc.close()
        await conn.close()
    files = [] if streams_only else manifest["files"]
    _restore_files(backup_dir, located.data_dir, files)
    return {"streams": restored, "requeued": requeued, "files": files}


def main(located: Located, argv: list[str]) -> int:
    """Entry point of `patchbay restore`."""
    args = parser().parse_args(argv)
    if not (args.dir / "manifest.json").is_file():
        print(f"patchbay restore: {args.dir} holds no backup (no manifest.json)", file=sys.stderr)
        return 2
    try:
        done = asyncio.run(restore(located, args.dir, replicas=_replicas(args.replicas, located),
                                   progress=not args.no_progress, streams_only=args.streams_only))
    except (RestoreRefused, pg_tools.PgToolError) as exc:
        print(f"patchbay restore: {exc}", file=sys.stderr)
        return 1
    requeued = ", ".join(f"{schema} {n}" for schema, n in done["requeued"].items() if n) or "none"
    messages = sum(done["streams"].values())
    print(f"restored: PostgreSQL, {len(done['streams'])} streams ({messages:,} messages), "
          f"{', '.join(done['files']) or 'no key files'} into {located.data_dir}; "
          f"events to republish: {requeued}.\nNext: start the stack (make run), then `patchbay rebuild all`.")
    return 0
