"""Browser tests: the whole stack as `make run` starts it, driven by Debian's chromium via Playwright.

Without chromium they fail with how to get it, unless PATCHBAY_SKIP_BROWSER_TESTS=1 (devtools.testing.needs).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from devtools.embedded import free_port
from devtools.testing.needs import chromium

from shared import bus

from .stack_runner import Stack, StackFailed, run_stack

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here (the plugin fails them without chromium, or skips them if told to).

    Under `make test` they are one unit on one worker (devtools.testing.workers.FOLDER_UNITS).
    """
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
        item.add_marker(pytest.mark.e2e)
    # kept together (one stack, one chromium); `Chromium` closes after the last of them
    items[:] = [i for i in items if i not in mine] + mine


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """`python -m devtools.stack run` on a fresh data dir and a free port."""
    try:
        with run_stack() as running:
            yield running
    except StackFailed as exc:
        pytest.fail(str(exc))


class Chromium:
    """One Playwright and chromium (fresh user-data dir), open only while browser tests run.

    Playwright's sync API marks its event loop as this thread's running loop between calls for as
    long as it is open; pytest-asyncio cannot run anything on the thread then. So it is started by
    the first browser test of a run of them and closed after the last (`pytest_runtest_teardown`),
    whatever order the tests come in (one process, or a pytest-xdist worker).
    """

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._context: Any = None
        self.keep_open = False  # the next test is a browser test too (set before each teardown)

    def context(self) -> Any:
        """The browser context, launched on first use."""
        if self._context is None:
            from playwright.sync_api import sync_playwright

            with ExitStack() as stack:
                pw = stack.enter_context(sync_playwright())
                profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="patchbay-chromium-"))
                context = pw.chromium.launch_persistent_context(
                    profile, executable_path=str(chromium()), args=CHROMIUM_ARGS, headless=True,
                    viewport={"width": 1280, "height": 900}, accept_downloads=True,
                )
                stack.callback(context.close)
                context.set_default_timeout(15_000)
                self._stack, self._context = stack.pop_all(), context
        return self._context

    def close(self) -> None:
        """Close chromium and Playwright's event loop (no-op when closed)."""
        stack, self._stack, self._context = self._stack, None, None
        if stack is not None:
            stack.close()


_CHROMIUM = Chromium()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the last browser test of a run of them, close chromium.

    `browser_context` closes it first thing in the teardown (before session fixtures, async ones
    too, are torn down after the last test); here again in case the test did not use it.
    """
    _CHROMIUM.keep_open = nextitem is not None and nextitem.get_closest_marker("browser") is not None
    try:
        return (yield)
    finally:
        if not _CHROMIUM.keep_open:
            _CHROMIUM.close()


@pytest.fixture
def browser_context() -> Iterator[Any]:
    """The chromium context shared by a run of browser tests (see `Chromium`)."""
    yield _CHROMIUM.context()
    if not _CHROMIUM.keep_open:
        _CHROMIUM.close()


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


@dataclass
class Inbox:
    """What the local SMTP server received."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message."""
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def wait_for(self, predicate: Any, count: int, timeout_s: float = 30) -> list[Any]:
        """The messages matching predicate, once there are `count` of them (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server (no TLS, no auth)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class FakeSwitch:
    """Answers `switch.testcall.request` like the switch would, and remembers the code it would speak."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.codes: dict[str, str] = {}
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._connect())
        self.ready.set()
        self.loop.run_forever()

    async def _connect(self) -> None:
        self.nc = await bus.connect(self.nats_url, "provisioner")

        async def on_request(msg: Any) -> None:
            body = json.loads(msg.data)
            with self.lock:
                self.codes[body["number"]] = body["code"]
            await msg.respond(b'{"accepted": true}')

        await self.nc.subscribe("switch.testcall.request", cb=on_request)

    def start(self) -> FakeSwitch:
        """Connect and answer."""
        self.thread.start()
        assert self.ready.wait(10), "the fake switch could not connect to NATS"
        return self

    def code_for(self, number: str, timeout_s: float = 10) -> str:
        """The code the test call to a number would speak."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if number in self.codes:
                    return self.codes[number]
            time.sleep(0.1)
        raise AssertionError(f"no test call to {number}")

    def stop(self) -> None:
        """Disconnect."""
        asyncio.run_coroutine_threadsafe(self.nc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def switch(stack: Stack) -> Iterator[FakeSwitch]:
    """A stand-in for the switch on the stack's NATS."""
    fake = FakeSwitch(stack.nats_url).start()
    yield fake
    fake.stop()


def configure_email(stack: Stack, port: int) -> None:
    """E-mail settings pointing at the local SMTP server (through the API)."""
    with stack.api() as api:
        reply = api.put("/v1/settings/email", json={
            "from_address": "noc@carrier.example", "from_name": "Carrier NOC", "smtp_host": "127.0.0.1",
            "smtp_port": port, "security": "none"})
        assert reply.status_code == 200, reply.text
