"""The whole stack as `make run` starts it, on a fresh data dir and a free port (tests and screenshots)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from devtools.embedded import free_port
from devtools.testing.plugin import server_dir

START_TIMEOUT_S = 120


class StackFailed(RuntimeError):
    """The stack did not start."""


@dataclass
class Stack:
    """The running stack: its URL and the admin token."""

    http: str
    token: str
    nats_url: str
    output: list[str]

    def api(self, token: str | None = None) -> httpx.Client:
        """A JSON API client (admin unless another token is given)."""
        return httpx.Client(base_url=self.http, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.token}"})

    def create_customer(self, **fields: Any) -> dict[str, Any]:
        """POST /v1/customers as admin."""
        with self.api() as api:
            reply = api.post("/v1/customers", json=fields)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def create_token(self, role: str) -> str:
        """A new token of a role."""
        with self.api() as api:
            reply = api.post("/v1/tokens", json={"name": f"{role}-{uuid.uuid4().hex[:6]}", "role": role})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["token"])


def _read(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


@contextmanager
def run_stack() -> Iterator[Stack]:
    """`python -m devtools.stack run` until the block ends (then Ctrl-C, and SIGKILL if it hangs)."""
    with server_dir("browser") as tmp:
        port = free_port()
        token = "pb_browser_" + secrets.token_urlsafe(32)
        env = {k: v for k, v in os.environ.items() if k not in ("PATCHBAY_NATS_URL", "PATCHBAY_DATABASE_URL")}
        env |= {"PATCHBAY_DATA_DIR": str(tmp / "patchbay"), "PATCHBAY_HTTP_PORT": str(port),
                "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_LOG_FORMAT": "json"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.stack", "run"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        lines: list[str] = []
        threading.Thread(target=_read, args=(proc, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("Patchbay is running." in line for line in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise StackFailed("the stack did not start:\n" + "".join(lines[-60:]))
            time.sleep(0.1)
        time.sleep(0.2)  # the banner's remaining lines
        nats_url = re.search(r"NATS:\s+(\S+)", "".join(lines))
        if nats_url is None:
            proc.kill()
            raise StackFailed("no NATS URL in the banner:\n" + "".join(lines[-60:]))
        try:
            yield Stack(f"http://127.0.0.1:{port}", token, nats_url.group(1), lines)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
