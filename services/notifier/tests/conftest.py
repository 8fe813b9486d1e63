"""Notifier fixtures: real SMTP (aiosmtpd), a Twilio-like HTTP API, a customer responder, the notifier."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from shared.embedded import free_port
from shared.secrets import Sealer

sys.path.insert(0, str(Path(__file__).parent))  # the testkit module beside this file

from notifier_testkit import FakeCustomers, FakeTwilio, SmtpServer


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
    import nats

    nc = await nats.connect(nats_url)
    fake = await FakeCustomers().start(nc)
    yield fake
    await fake.stop()
    await nc.drain()
