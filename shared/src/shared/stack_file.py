"""Where a running stack is: `<data dir>/run/stack.json`, written by the stack runner, read by tools.

Tools (`patchbay rebuild`, `dead-letters`, `simulate`, `backup`, `restore`) find NATS and
PostgreSQL in this order: their own flags (`--nats-url`, `--database-url`), the environment
(`PATCHBAY_NATS_URL`, `PATCHBAY_DATABASE_URL`), the stack file of the data dir (`--data-dir`,
else `PATCHBAY_DATA_DIR`, else `.patchbay`), then the defaults. The file is removed when the
runner stops; one left by a runner that died is ignored (its pid is gone).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient

DEFAULT_DATA_DIR = Path(".patchbay")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patchbay"


def stack_file(data_dir: Path) -> Path:
    """The stack file of a data dir."""
    return data_dir / "run" / "stack.json"


def write_stack_file(data_dir: Path, info: dict[str, Any]) -> Path:
    """Record the live stack (URLs, ports, credential paths) atomically, readable by the owner only."""
    path = stack_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info | {"pid": os.getpid()}, out, indent=2, sort_keys=True)
    partial.replace(path)
    return path


def remove_stack_file(data_dir: Path) -> None:
    """Forget the stack (the runner stops)."""
    stack_file(data_dir).unlink(missing_ok=True)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_stack_file(data_dir: Path) -> dict[str, Any] | None:
    """What the runner of this data dir recorded, None if none runs there."""
    try:
        info = json.loads(stack_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and _alive(info.get("pid")) else None


@dataclass(frozen=True)
class Located:
    """The stack a tool talks to, and where each URL came from (for its error messages)."""

    data_dir: Path
    nats_url: str
    database_url: str
    nats_from: str
    database_from: str
    info: dict[str, Any]

    def nats_hint(self) -> str:
        """How to point the tool at another NATS."""
        return (f"NATS {self.nats_url} (from {self.nats_from}); start the stack (make run), or set "
                "--nats-url / PATCHBAY_NATS_URL, or --data-dir of a running stack")

    def database_hint(self) -> str:
        """How to point the tool at another PostgreSQL."""
        return (f"PostgreSQL {redact(self.database_url)} (from {self.database_from}); start the stack "
                "(make run), or set --database-url / PATCHBAY_DATABASE_URL, or --data-dir of a running stack")


def redact(url: str) -> str:
    """A URL with its password masked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def locate(data_dir: Path | str | None = None, nats_url: str | None = None,
           database_url: str | None = None) -> Located:
    """Flags, then environment, then the data dir's stack file, then the defaults."""
    env = os.environ
    base = Path(data_dir or env.get("PATCHBAY_DATA_DIR") or DEFAULT_DATA_DIR)
    info = read_stack_file(base) or {}
    recorded = f"{stack_file(base)}"

    def pick(flag: str | None, var: str, key: str, default: str) -> tuple[str, str]:
        if flag:
            return flag, "the command line"
        if env.get(var):
            return env[var], var
        if info.get(key):
            return str(info[key]), recorded
        return default, f"the default; no running stack recorded in {recorded}"

    nats, nats_from = pick(nats_url, "PATCHBAY_NATS_URL", "nats_url", DEFAULT_NATS_URL)
    db, db_from = pick(database_url, "PATCHBAY_DATABASE_URL", "database_url", DEFAULT_DATABASE_URL)
    return Located(base, nats, db, nats_from, db_from, info)


async def tool_nats(url: str, identity: str = "provisioner", *, data_dir: Path | None = None,
                    **options: Any) -> NatsClient:
    """A tool's NATS connection: a few quiet tries, then `NoServersError` (never a retry loop).

    `url` may be a comma-separated cluster list. It connects as `identity` (the operator's tools:
    the provisioner; docs/security.md "NATS"), its seed from the environment or the data dir's
    credentials (shared.bus).
    """
    from shared import bus
    from shared.settings import nats_servers

    async def quiet(_: Exception) -> None:
        return None  # the tool reports the failure once, with the URL it tried

    settings = bus.BusSettings(data_dir=data_dir) if data_dir is not None else bus.BusSettings()
    defaults: dict[str, Any] = {"connect_timeout": 3, "max_reconnect_attempts": 5,
                                "reconnect_time_wait": 0.5, "error_cb": quiet}
    return await bus.connect(nats_servers(url), identity, seed=bus.seed_for(identity, settings),
                             **(defaults | options))
