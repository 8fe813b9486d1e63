"""Notifier fixtures: real SMTP (aiosmtpd), a Twilio-like HTTP API, a customer responder, the notifier."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from devtools.embedded import free_port
from shared.secrets import Sealer

from shared import bus

sys.path.insert(0, str(Path(__file__).parent))  # the testkit module beside this file

from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier.bootstrap import NotifierService, NotifierSettings, start
from notifier_testkit import FakeCustomers, FakeTwilio, SmtpServer
from strangers import strangers_queued


@pytest.fixture(scope="module")
def notifier_overrides() -> dict[str, Any]:
    """Settings a test module wants different (override this fixture in the module)."""
    return {}


@pytest.fixture(scope="module")
def secret_key() -> str:
    """A sealing key per module, as PATCHBAY_SECRET_KEY would give it."""
    return Sealer.new_key()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on a free port."""
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def twilio() -> AsyncIterator[FakeTwilio]:
    """A local HTTP server answering like Twilio's Messages API."""
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def customers(nats_url: str) -> AsyncIterator[FakeCustomers]:
    """A customer responder with cards that have contacts (until the real service has contacts)."""

    nc = await bus.connect(nats_url, "provisioner")
    fake = await FakeCustomers().start(nc)
    yield fake
    await fake.stop()
    await nc.drain()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(
    nats_url: str,
    make_database: Any,
    secret_key: str,
    tmp_path_factory: pytest.TempPathFactory,
    notifier_overrides: dict[str, Any],
) -> AsyncIterator[NotifierService]:
    """The notifier in-process on a fresh database, with short retries (one per test module)."""
    defaults: dict[str, Any] = {
        "retry_base_s": 0.2, "retry_max_s": 1.0, "max_attempts": 6, "idle_poll_s": 0.1,
        "recovery_interval_s": 0.5, "email_workers": 2, "sms_workers": 2,
        "allow_insecure_providers": True,  # the doubles speak plain http
    }
    settings = NotifierSettings(
        nats_url=nats_url,
        database_url=await make_database(),
        secret_key=secret_key,
        journal_dir=Path(tmp_path_factory.mktemp("journal")),
        **(defaults | notifier_overrides),
    )
    svc = await start(settings)
    yield svc
    await svc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def nc(service: NotifierService, nats: NatsClient, nats_url: str) -> NatsClient:
    """A client the notifier already answers; other tests' leftovers queued before the test (`strangers`).

    Leftovers reach a notifier at any time (a message another module's notifier fetched and never
    acknowledged comes again after its ack wait), and wait for the channel's next settings: here
    a few are queued before every test, so the test's first settings send them to its server.
    """

    async def answers() -> bool:
        try:
            await nats.request("notifier.query.settings.email", b"{}", timeout=0.5)
            return True
        except Exception:
            return False

    await wait_for(answers, timeout=10, message="the notifier never answered")
    await strangers_queued(nats_url)
    return nats
