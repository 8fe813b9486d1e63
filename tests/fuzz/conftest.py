"""Bad input at every door: the whole stack as `make run` starts it, for fuzzing its HTTP and NATS doors."""

from __future__ import annotations

import json
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

import pytest
from devtools.embedded import free_port
from devtools.testing.plugin import server_dir
from shared.bus_credentials import PUBLIC_KEYS


@dataclass
class FuzzStack:
    """Where the running stack listens, and how to read its output."""

    http: str
    nats_url: str
    token: str
    output: list[str]
    process: subprocess.Popen[str]
    credentials: Path  # the stack's NATS seeds (made by it on first start, in its data dir)

    def seed(self, identity: str) -> str:
        """The seed the stack made for an identity: how a test connects to its NATS."""
        return (self.credentials / f"{identity}.nk").read_text()

    def service_keys(self) -> dict[str, str]:
        """The stack's services' public keys: a command to them carries an HMAC keyed with these."""
        keys: dict[str, str] = json.loads((self.credentials / PUBLIC_KEYS).read_text())
        return keys

    def alive(self) -> bool:
        """The runner still runs and no service was restarted by its supervisor."""
        restarted = [line for line in self.output if "service exited; restarting" in line]
        return self.process.poll() is None and not restarted

    def errors(self, limit: int = 3) -> str:
        """The last logged failures of any service (with their stack traces)."""
        found = [line for line in self.output if '"level": "error"' in line or "Traceback" in line]
        return "".join(found[-limit:])


def _read(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


@pytest.fixture(scope="session")
def fuzz_stack() -> Iterator[FuzzStack]:
    """`python -m devtools.stack run` on a fresh data dir; stopped (exit 0) at the end."""
    with server_dir("fuzz") as tmp:
        port = free_port()
        token = "pb_fuzz_" + secrets.token_urlsafe(32)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
        env |= {"PATCHBAY_DATA_DIR": str(tmp / "patchbay"), "PATCHBAY_HTTP_PORT": str(port),
                "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_LOG_FORMAT": "json"}
        proc = subprocess.Popen([sys.executable, "-m", "devtools.stack", "run"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        lines: list[str] = []
        threading.Thread(target=_read, args=(proc, lines), daemon=True).start()
        deadline = time.monotonic() + 240
        while not any("Press Ctrl-C to stop." in line for line in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the stack did not start:\n" + "".join(lines[-60:]))
            time.sleep(0.1)
        nats_url = re.search(r"NATS:\s+(\S+)", "".join(lines))
        assert nats_url
        try:
            yield FuzzStack(f"http://127.0.0.1:{port}", nats_url.group(1), token, lines, proc,
                            tmp / "patchbay" / "credentials")
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0, "".join(lines[-40:])
