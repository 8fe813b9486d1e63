"""Sends queued deliveries: claim a batch (committed), send each over a reused connection, record."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

import structlog
from shared.eventstore import ConcurrencyError
from shared.secrets import Sealer

from notifier.adapters.delivery_store import DeliveryStore
from notifier.adapters.handover_journal import INTENT, HandoverJournal
from notifier.adapters.metrics import DELIVERIES, SEND_SECONDS
from notifier.adapters.sms_sender import TwilioSender
from notifier.adapters.smtp_sender import Email, SmtpSender
from notifier.application.channel_settings import ChannelSettings
from notifier.application.templates import render_system
from notifier.application.waker import Waker
from notifier.domain.delivery import Delivery, Recorded
from notifier.domain.retry import Outcome, RetryPolicy

log = structlog.get_logger(__name__)

JOURNAL_TRUNCATE_BYTES = 1 << 20
SETTINGS_POLL_S = 10.0  # a worker backing off reads its channel's settings version this often
STOP_WITHIN_S = 10.0  # a stop waits this long for the workers (they are cancelled, again if need be)

__all__ = ["DeliveryEngine", "content"]


def content(d: Delivery, sealer: Sealer) -> tuple[str | None, str]:
    """Subject and body: stored for broadcasts, rendered now (secret opened in memory) for system messages."""
    if d.template is None:
        return d.subject, d.body or ""
    secret = sealer.unseal(d.sealed_secret) if d.sealed_secret else None
    rendered = render_system(d.template, d.channel, d.variables, secret)
    return rendered.subject, rendered.body


class DeliveryEngine:
    """Per channel, a few workers, each with its own provider connection."""

    def __init__(
        self,
        *,
        store: DeliveryStore,
        settings: ChannelSettings,
        journal: HandoverJournal,
        sealer: Sealer,
        policy: RetryPolicy,
        instance: UUID,
        waker: Waker,
        workers: dict[str, int],
        batch: int = 50,
        idle_poll_s: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings
        self.journal = journal
        self.sealer = sealer
        self.policy = policy
        self.instance = instance
        self.waker = waker
        self.workers = workers
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.in_flight = 0
        self.active: set[UUID] = set()  # claimed here and not yet recorded
        self.sent = 0
        self.failed = 0
        self.stopping = False
        self.tasks: list[asyncio.Task[None]] = []
        self._stopped: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Run every worker until cancelled or stopped; a cancel stops the workers before it returns."""
        self.tasks = [
            asyncio.create_task(self._supervise(channel, index), name=f"deliver-{channel}-{index}")
            for channel, count in self.workers.items() for index in range(count)
        ]
        try:
            if self.tasks:
                await asyncio.wait(self.tasks)  # they end only at the stop
        finally:
            stopping = asyncio.ensure_future(self.stop())
            while not stopping.done():  # a stop asked again (cancelled again) still waits for the workers
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(stopping)

    async def stop(self) -> None:
        """Stop the workers and wait for them (bounded): no round starts after this, none is left
        running to use the pool once the service closes it. Idempotent."""
        self.stopping = True
        if self._stopped is None:
            self._stopped = asyncio.ensure_future(self._cancel_workers())
        await asyncio.shield(self._stopped)

    async def _cancel_workers(self) -> None:
        # cancelled again while one is left: Python 3.11's wait_for drops a cancel that arrives as
        # its awaited future completes (the worker then goes on; `stopping` ends it at its next round)
        pending = {t for t in self.tasks if not t.done()}
        deadline = time.monotonic() + STOP_WITHIN_S
        while pending and time.monotonic() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        if pending:
            log.warning("delivery_workers_not_stopped", workers=sorted(t.get_name() for t in pending))

    async def _supervise(self, channel: str, index: int) -> None:
        wake = self.waker.register()
        changed = self.waker.register_settings(channel)
        while not self.stopping:
            try:
                await self._work(channel, wake, changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:  # cut short by the stop, not a failure
                    return
                log.exception("delivery_worker_failed", channel=channel, worker=index, error=str(exc))
                await asyncio.sleep(1.0)

    async def _idle(self, wake: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)

    async def _back_off(self, channel: str, changed: asyncio.Event, seconds: float, version: int) -> bool:
        """Wait out a back-off, or less if the channel's settings change meanwhile (then True).

        The change is told by a NOTIFY (any replica's write); the version is also read every
        SETTINGS_POLL_S, so a notice lost with the listening connection costs seconds, not the pause.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, SETTINGS_POLL_S))
            if changed.is_set():
                return True
            with contextlib.suppress(Exception):  # PostgreSQL away: go on backing off
                current = await self.settings.version(channel)  # the version alone: no secret opened
                if current is not None and current != version:
                    return True
        return False

    async def _config(self, channel: str) -> tuple[Any, int] | None:
        if channel == "email":
            return await self.settings.smtp_config()
        return await self.settings.sms_config()

    async def _work(self, channel: str, wake: asyncio.Event, changed: asyncio.Event) -> None:
        sender: SmtpSender | TwilioSender | None = None
        version = -1
        pause = 0
        try:
            while not self.stopping:
                wake.clear()
                changed.clear()  # before the read: a change from here on ends the next back-off
                # the version alone each round; the settings (their secret opened) only when it moved
                if sender is None or await self.settings.version(channel) != version:
                    found = await self._config(channel)
                    if found is None:  # nothing can be sent before the settings exist; nothing is claimed
                        await self._idle(wake, self.idle_poll_s * 4)
                        continue
                    if sender is not None:  # new settings: a new connection
                        await sender.close()
                    sender = SmtpSender(found[0]) if channel == "email" else TwilioSender(found[0])
                    version = found[1]
                result = await self._one_batch(channel, sender, version, changed)
                if result is None:
                    await self._idle(wake, self.idle_poll_s)
                elif result:  # the provider is unreachable: back off before claiming more
                    pause += 1
                    if await self._back_off(channel, changed, self.policy.delay(pause), version):
                        pause = 0  # new settings: try them now, and back off afresh if they fail
                else:
                    pause = 0
        finally:
            if sender is not None:
                await sender.close()

    async def _one_batch(
        self, channel: str, sender: Any, version: int, changed: asyncio.Event | None = None,
    ) -> bool | None:
        """Claim and send one batch with the settings of `version`; None when nothing was due, True
        when the provider was unreachable or refused the credentials (the channel pauses)."""
        self.in_flight += 1  # before the claim, so the journal is never truncated under a claim
        try:
            claimed = await self.store.claim(channel, self.instance, self.batch)
            self.active.update(d.delivery_id for d in claimed)
            if not claimed:
                return None
            done: list[Recorded] = []
            untouched: list[UUID] = []
            unreachable = False
            for index, d in enumerate(claimed):
                started = time.perf_counter()
                outcome = await self._attempt(sender, d)
                SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
                done.append(self._decide(d, outcome))
                DELIVERIES.labels(channel, done[-1].state if not done[-1].dead_letter else "dead").inc()
                # the rest alike: given back untried; or the settings changed: the rest get the new ones
                if outcome.pauses_channel or (changed is not None and changed.is_set()):
                    unreachable = outcome.pauses_channel
                    untouched = [u.delivery_id for u in claimed[index + 1 :]]
                    break
            # untried ones wait the first step of a pause, not when cut short by a settings notice
            delay = self.policy.delay(1) if unreachable else 0.0
            if (untouched or any(r.state == "queued" for r in done)) and await self._stale(channel, version):
                # tried with settings no longer in force: the retries are due at once (their attempt
                # counted), the untried ones too, and the pause those settings decided does not hold
                done = [replace(r, retry_in_s=0.0) if r.state == "queued" else r for r in done]
                delay, unreachable = 0.0, False
            # outcomes are facts now: keep trying to write them (a lost outcome would leave a claim
            # that only this process's death could settle); the store checks the version again
            await self._persist(lambda: self.store.record(done, version))
            if untouched:
                await self._persist(lambda: self.store.release(untouched, delay, version, channel))
            self.active.difference_update(d.delivery_id for d in claimed)
            return unreachable
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._truncate_journal()

    async def _stale(self, channel: str, version: int) -> bool:
        """Whether the channel's settings are newer than `version` (an unreadable version: not known)."""
        try:
            current = await self.settings.version(channel)
        except Exception:
            return False  # the store's record still compares the versions
        stale = current is not None and current > version
        if stale:
            log.info("attempts_with_stale_settings", channel=channel, tried_with=version, current=current)
        return stale

    async def _persist(self, write: Callable[[], Awaitable[None]]) -> None:
        delay = 0.2
        while True:
            try:
                await write()
                return
            except ConcurrencyError:
                raise  # another instance settled these claims: nothing of ours to write
            except Exception as exc:
                log.warning("delivery_record_retrying", error=str(exc), delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _truncate_journal(self) -> None:
        with contextlib.suppress(OSError):
            path = HandoverJournal.path_for(self.journal.directory, self.instance)
            if path.stat().st_size > JOURNAL_TRUNCATE_BYTES:
                self.journal.truncate_if_idle()

    async def _attempt(self, sender: Any, d: Delivery) -> Outcome:
        try:
            subject, body = content(d, self.sealer)
        except Exception as exc:  # a template or sealed secret that cannot be used never will be
            return Outcome.permanent(f"cannot render the message: {type(exc).__name__}")
        handover: Callable[[], None] = lambda: self.journal.record(d.delivery_id)  # noqa: E731
        intent: Callable[[], None] = lambda: self.journal.record(d.delivery_id, INTENT)  # noqa: E731
        if isinstance(sender, SmtpSender):
            return await sender.send(
                Email(to=d.recipient, subject=subject or "", body=body, message_key=str(d.delivery_id)),
                handover,
                intent,
            )
        assert isinstance(sender, TwilioSender)
        return await sender.send(d.recipient, body, handover, intent)

    def _decide(self, d: Delivery, outcome: Outcome) -> Recorded:
        verdict = self.policy.decide(outcome, d.attempts)
        if verdict == "sent":
            self.sent += 1
            return Recorded(
                d,
                "sent",
                provider_id=outcome.provider_id,
                error=outcome.error,
                unconfirmed=outcome.unconfirmed,
            )
        if verdict == "retry":
            return Recorded(d, "queued", error=outcome.error, retry_in_s=self.policy.delay(d.attempts))
        self.failed += 1
        log.warning(
            "delivery_failed",
            delivery_id=str(d.delivery_id),
            channel=d.channel,
            attempts=d.attempts,
            error=outcome.error,
            dead_lettered=verdict == "dead",
        )
        return Recorded(d, "failed", error=outcome.error, dead_letter=verdict == "dead")
