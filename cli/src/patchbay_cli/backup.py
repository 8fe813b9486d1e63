"""`patchbay backup DIR`: PostgreSQL, every JetStream stream, the secret key and the data dir's settings.

Order: PostgreSQL first (`pg_dump`, one consistent snapshot), then each stream read up to its
last sequence at that moment (CALLS, the busiest, last). The streams are therefore newer than
the dump: a restore keeps of the event-store streams only the events the dump holds and
republishes those the dump holds but the streams do not (see `restore`), and the JetStream-only
streams (calls, payments, work items) keep everything they had, which the projections then read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from shared.stack_file import Located, redact, tool_nats
from tqdm import tqdm

from patchbay_cli import pg_tools
from patchbay_cli.stream_files import dump_stream

FORMAT = 1
SECRET_FILES = ("secret_key", "admin_token")  # the data dir's settings a restore needs
LAST = ("CALLS",)  # read last: the busiest, and the one that is JetStream's alone


def parser() -> argparse.ArgumentParser:
    """The command line of `patchbay backup`."""
    cli = argparse.ArgumentParser(prog="patchbay backup", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("dir", type=Path, help="where to write the backup (a new or empty directory)")
    cli.add_argument("--no-progress", action="store_true", help="no progress bars")
    return cli


def _secrets(located: Located, out: Path) -> list[str]:
    """Copy the sealing key (PATCHBAY_SECRET_KEY wins over the data dir's) and admin token, mode 0600."""
    copied = []
    for name in SECRET_FILES:
        value = os.environ.get(f"PATCHBAY_{name.upper()}")
        source = located.data_dir / name
        if value is None and source.is_file():
            value = source.read_text().strip()
        if value:
            fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as target:
                target.write(value + "\n")
            copied.append(name)
    if previous := os.environ.get("PATCHBAY_SECRET_KEY_PREVIOUS"):
        fd = os.open(out / "secret_key_previous", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as target:
            target.write(previous + "\n")
        copied.append("secret_key_previous")
    return copied


async def backup(located: Located, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Write the backup; return its manifest."""
    started = time.monotonic()
    conn = await asyncpg.connect(located.database_url, timeout=10)
    try:
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    nc = await tool_nats(located.nats_url, data_dir=located.data_dir)
    try:
        print(f"PostgreSQL {redact(located.database_url)}: pg_dump ...", file=sys.stderr, flush=True)
        dump = str(out / "postgres.dump")
        await asyncio.to_thread(pg_tools.run, "pg_dump", "--format=custom", "--file", dump,
                                "--dbname", located.database_url, server_major=server_major)
        print(f"PostgreSQL: {(out / 'postgres.dump').stat().st_size:,} bytes", file=sys.stderr, flush=True)
        js = nc.jetstream()
        names = sorted((s.config.name or "" for s in await js.streams_info()), key=lambda n: (n in LAST, n))
        (out / "streams").mkdir()
        streams = []
        for name in names:
            bar = tqdm(desc=f"stream {name}", unit="msg", disable=not progress, file=sys.stderr,
                       dynamic_ncols=True)

            def show(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            try:
                summary = await dump_stream(js, name, out / "streams", show)
            finally:
                bar.close()
            streams.append({k: summary[k] for k in ("name", "first_seq", "last_seq", "messages")})
            print(f"stream {name}: {summary['messages']:,} messages (seq {summary['first_seq']}-"
                  f"{summary['last_seq']})", file=sys.stderr, flush=True)
    finally:
        await nc.close()
    manifest = {
        "format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "postgres": "postgres.dump",
        "postgres_major": server_major, "streams": streams, "files": _secrets(located, out),
        "source": {"nats_url": located.nats_url, "database_url": redact(located.database_url)},
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(located: Located, argv: list[str]) -> int:
    """Entry point of `patchbay backup`."""
    args = parser().parse_args(argv)
    out: Path = args.dir
    if out.exists() and any(out.iterdir()):
        print(f"patchbay backup: {out} is not empty; give a new or empty directory", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # it holds the sealing key
    try:
        manifest = asyncio.run(backup(located, out, progress=not args.no_progress))
    except pg_tools.PgToolError as exc:
        print(f"patchbay backup: {exc}", file=sys.stderr)
        shutil.rmtree(out, ignore_errors=True)
        return 1
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    total = sum(s["messages"] for s in manifest["streams"])
    print(f"backup written to {out}: PostgreSQL, {len(manifest['streams'])} streams ({total:,} messages), "
          f"{', '.join(manifest['files']) or 'no key files'}; {manifest['seconds']} s")
    return 0
