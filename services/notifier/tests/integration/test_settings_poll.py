"""The delivery workers watch their channel's settings by version alone: the secret is opened only
when the settings changed, not at every idle round nor at every poll of a back-off."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from uuid import UUID

import pytest
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from notifier.adapters.delivery_store import DeliveryStore
from notifier.application import delivery_engine
from notifier.application.channel_settings import ChannelSettings
from notifier.application.delivery_engine import DeliveryEngine
from notifier.application.waker import Waker
from notifier.bootstrap import NotifierService
from notifier.domain.delivery import Delivery
from notifier_testkit import SmtpServer, call
from shared.secrets import Sealer
from strangers import settle_leftovers

pytestmark = pytest.mark.servers


class CountingSealer(Sealer):
    """The real sealer, counting how often a secret is opened."""

    opened = 0

    def unseal(self, token: str) -> str:
        """Open the secret, and count it."""
        self.opened += 1
        return super().unseal(token)


class CountingStore(DeliveryStore):
    """The real store, counting the workers' claims (one per idle round)."""

    claims = 0

    async def claim(self, channel: str, instance: UUID, limit: int) -> list[Delivery]:
        """Claim as the store does, and count it."""
        self.claims += 1
        return await super().claim(channel, instance, limit)


def engine_of(service: NotifierService, secret_key: str) -> DeliveryEngine:
    """A delivery engine of its own on the service's database, its sealer and store counting."""
    sealer = CountingSealer(secret_key)
    settings = ChannelSettings(service.pool, service.engine.settings.events, sealer, allow_insecure=True)
    return DeliveryEngine(
        store=CountingStore(service.pool, service.store.events), settings=settings, journal=service.journal,
        sealer=sealer, policy=service.engine.policy, instance=uuid.uuid4(), waker=Waker(), workers={},
        idle_poll_s=0.01,
    )


async def email_settings(nc: NatsClient, password: str, port: int | None = None) -> int:
    """E-mail settings with a password (sealed at rest); their version."""
    reply: dict[str, Any] = await call(nc, "notifier.cmd.settings.email", {
        "from_address": "noc@carrier.example", "smtp_host": "127.0.0.1", "smtp_port": port or free_port(),
        "security": "none", "smtp_username": None, "smtp_password": password})
    assert "error" not in reply, reply
    return int(reply["version"])


async def test_a_back_off_polls_the_version_without_opening_the_secret(
    nc: NatsClient, service: NotifierService, secret_key: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = await email_settings(nc, "pw-" + uuid.uuid4().hex)
    engine = engine_of(service, secret_key)
    sealer = engine.settings.sealer
    assert isinstance(sealer, CountingSealer)
    monkeypatch.setattr(delivery_engine, "SETTINGS_POLL_S", 0.02)
    # ~15 polls of an unchanged version (no notice: the event is never set): the back-off runs out
    assert not await engine._back_off("email", asyncio.Event(), 0.3, version)
    # a change the polls alone see ends it
    backing_off = asyncio.create_task(engine._back_off("email", asyncio.Event(), 30.0, version))
    assert await email_settings(nc, "pw-" + uuid.uuid4().hex) == version + 1
    assert await asyncio.wait_for(backing_off, 10)
    assert sealer.opened == 0


async def test_an_idle_worker_opens_the_secret_once_per_settings_version(
    nc: NatsClient, service: NotifierService, secret_key: str, smtp: SmtpServer,
) -> None:
    await settle_leftovers(nc, service)  # other tests' e-mails sent away: the rounds here are idle ones
    # a server that takes what may still come (a leftover redelivered meanwhile is sent, not failed)
    await email_settings(nc, "pw-" + uuid.uuid4().hex, smtp.port)
    engine = engine_of(service, secret_key)
    sealer, store = engine.settings.sealer, engine.store
    assert isinstance(sealer, CountingSealer) and isinstance(store, CountingStore)
    worker = asyncio.create_task(engine._work("email", asyncio.Event(), asyncio.Event()))
    try:
        await wait_for(lambda: store.claims >= 10, timeout=10, message="ten idle rounds")
        assert sealer.opened == 1
        await email_settings(nc, "pw-" + uuid.uuid4().hex, smtp.port)  # a new version: opened once more
        seen = store.claims
        await wait_for(lambda: store.claims >= seen + 10, timeout=10, message="ten more idle rounds")
        assert sealer.opened == 2
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
