"""PostgreSQL's own `pg_dump` / `pg_restore`, of the server's major version.

Found in `PATCHBAY_PG_BIN_DIR`, else the pgserver wheel's bin dir (the embedded PostgreSQL 16's
own tools, installed by `make install`), else on PATH. A tool older than the server is refused
with a message (pg_dump cannot dump a newer server).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path


class PgToolError(RuntimeError):
    """A PostgreSQL tool is missing, too old, or failed."""


def tool(name: str) -> Path:
    """The path of pg_dump, pg_restore or psql to use."""
    candidates = []
    if configured := os.environ.get("PATCHBAY_PG_BIN_DIR"):
        candidates.append(Path(configured) / name)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)
    if found := shutil.which(name):
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise PgToolError(f"{name} not found: set PATCHBAY_PG_BIN_DIR to the bin dir of PostgreSQL 16 or newer "
                      "(make install brings the pgserver wheel's)")


def major_version(path: Path) -> int:
    """The tool's major version (`pg_dump (PostgreSQL) 16.2` -> 16)."""
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise PgToolError(f"cannot read the version of {path}: {out!r}")
    return int(match.group(1))


def run(name: str, *args: str, server_major: int | None = None) -> str:
    """Run a tool; raise PgToolError with its stderr on failure."""
    path = tool(name)
    if server_major is not None and (mine := major_version(path)) < server_major:
        raise PgToolError(f"{path} is PostgreSQL {mine}, the server {server_major}: "
                          f"set PATCHBAY_PG_BIN_DIR to PostgreSQL {server_major}'s bin dir")
    done = subprocess.run([str(path), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PgToolError(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout
