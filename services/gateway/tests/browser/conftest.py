"""Browser tests: the whole stack as `make run` starts it, driven by Debian's chromium via Playwright.

Skipped only when /usr/bin/chromium is missing and CI is not set; in CI they must run.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from shared.embedded import free_port
from shared.testing.plugin import server_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_TIMEOUT_S = 120


def pytest_configure(config: pytest.Config) -> None:
    """The `browser` marker."""
    config.addinivalue_line("markers", "browser: drives the web pages in headless chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here; skip them only off CI when chromium is not installed."""
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
        item.add_marker(pytest.mark.e2e)
    # Playwright's sync API keeps an event loop running on the main thread for the session;
    # pytest-asyncio cannot run fixtures after it, so the browser tests go last
    items[:] = [i for i in items if i not in mine] + mine
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); CI runs these")
        for item in mine:
            item.add_marker(skip)


@dataclass
class Stack:
    """The running stack: its URL and the admin token."""

    http: str
    token: str
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


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """`python -m shared.stack run` on a fresh data dir and a free port."""
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip("no chromium")
    with server_dir("browser") as tmp:
        port = free_port()
        token = "pb_browser_" + secrets.token_urlsafe(16)
        env = {k: v for k, v in os.environ.items() if k not in ("PATCHBAY_NATS_URL", "PATCHBAY_DATABASE_URL")}
        env |= {"PATCHBAY_DATA_DIR": str(tmp / "patchbay"), "PATCHBAY_HTTP_PORT": str(port),
                "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_LOG_FORMAT": "json"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.stack", "run"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        lines: list[str] = []
        threading.Thread(target=_read, args=(proc, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("Patchbay is running." in line for line in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the stack did not start:\n" + "".join(lines[-60:]))
            time.sleep(0.1)
        try:
            yield Stack(f"http://127.0.0.1:{port}", token, lines)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    """One chromium with a fresh user-data dir for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="patchbay-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def browser(browser_context: Any, stack: Stack) -> Iterator[Any]:
    """A fresh page: no cookies, empty localStorage; console errors fail the test."""
    browser_context.clear_cookies()
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(f"{stack.http}/console/login")
    page.evaluate("localStorage.clear()")
    yield page
    page.close()
    assert not problems, problems


def sign_in(page: Any, stack: Stack, token: str | None = None) -> None:
    """Sign in through the form."""
    page.goto(f"{stack.http}/console/login")
    page.fill("#f-token", token or stack.token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/(\?.*)?$"))


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix} {uuid.uuid4().hex[:8]}"
