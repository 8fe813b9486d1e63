"""The whole stack as `make run` starts it: `python -m devtools.stack run`, driven over HTTP and NATS."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from devtools.embedded import free_port
from devtools.testing.plugin import server_dir


@dataclass
class Stack:
    """A running stack: where it listens and the admin token."""

    http: str
    nats_url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[str]
    output: list[str]

    @property
    def headers(self) -> dict[str, str]:
        """Admin authorization."""
        return {"Authorization": f"Bearer {self.token}"}


def _read(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Start the stack on a fresh data dir and a free port; stop it (and check nothing is left)."""
    with server_dir("e2e") as tmp:
        yield from _run_stack(tmp / "patchbay")


def _run_stack(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    port = free_port()
    token = "pb_e2e_" + secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PATCHBAY_NATS_URL", "PATCHBAY_DATABASE_URL")}
    env |= {"PATCHBAY_DATA_DIR": str(data_dir), "PATCHBAY_HTTP_PORT": str(port),
            "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_LOG_FORMAT": "json"} | (extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.stack", "run"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=_read, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + 240
    while not any("Patchbay is running." in line for line in lines):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the stack did not start:\n" + "".join(lines[-60:]))
        time.sleep(0.1)
    time.sleep(0.2)  # the banner's remaining lines
    text = "".join(lines)
    nats_url = re.search(r"NATS:\s+(\S+)", text)
    assert nats_url, text
    assert token in text  # the banner shows the admin token
    started = psutil.Process(proc.pid).children(recursive=True)
    yield Stack(f"http://127.0.0.1:{port}", nats_url.group(1), token, data_dir, proc, lines)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, "".join(lines[-40:])
    _gone, alive = psutil.wait_procs(started, timeout=20)
    assert not alive, f"left running after Ctrl-C: {[p.pid for p in alive]}"
