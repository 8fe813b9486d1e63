"""The settings aggregate (audit part): read through a short cache, changed by events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from shared.contracts.customer import CommandMeta, SetAuditSettings
from shared.contracts.events import REGISTRY
from shared.envelope import Metadata
from shared.eventstore import ConcurrencyError, EventStore

from customer.domain import events as ev
from customer.domain.decide import decide_audit_settings
from customer.domain.evolve import evolve_settings
from customer.domain.state import SettingsState


class SettingsService:
    """Current settings, cached for `ttl_s` so replicas see a change within that time."""

    def __init__(self, store: EventStore, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._state = SettingsState()
        self._loaded_at = float("-inf")

    async def current(self) -> SettingsState:
        """The settings, reloaded when the cached copy is older than the TTL."""
        if time.monotonic() - self._loaded_at > self.ttl_s:
            events = (await self.store.load([ev.SETTINGS_STREAM]))[ev.SETTINGS_STREAM]
            state = SettingsState()
            for event in events:
                state = evolve_settings(state, event)
            self._state, self._loaded_at = state, time.monotonic()
        return self._state

    async def fresh(self) -> SettingsState:
        """The settings read now, not from the cache."""
        self._loaded_at = float("-inf")
        return await self.current()

    async def change(
        self, decide: Callable[[SettingsState], list[ev.Event]], meta: CommandMeta
    ) -> SettingsState:
        """Decide against fresh settings and append; retried on a concurrent change."""
        for _ in range(5):
            state = await self.fresh()
            envelopes = [
                REGISTRY.envelope(
                    d, category=ev.SETTINGS_CATEGORY, stream_id=ev.SETTINGS_STREAM,
                    version=state.version + i + 1,
                    metadata=Metadata(actor=meta.actor, command_id=meta.command_id,
                                      correlation_id=meta.correlation_id, reason=meta.reason),
                )
                for i, d in enumerate(decide(state))
            ]
            try:
                if envelopes:
                    await self.store.append(envelopes)
            except ConcurrencyError:
                continue
            for envelope in envelopes:
                state = evolve_settings(state, envelope)
            self._state, self._loaded_at = state, time.monotonic()
            return state
        raise ConcurrencyError("settings changed concurrently too often")

    async def set_audit(self, cmd: SetAuditSettings) -> bytes:
        """Change the audit settings; retried on a concurrent change."""
        for _ in range(5):
            self._loaded_at = float("-inf")
            state = await self.current()
            drafts = decide_audit_settings(state, cmd.require_reason)
            envelopes = [
                REGISTRY.envelope(
                    d, category=ev.SETTINGS_CATEGORY, stream_id=ev.SETTINGS_STREAM,
                    version=state.version + i + 1,
                    metadata=Metadata(actor=cmd.meta.actor, command_id=cmd.meta.command_id,
                                      correlation_id=cmd.meta.correlation_id,
                                      reason=cmd.meta.reason),
                )
                for i, d in enumerate(drafts)
            ]
            try:
                if envelopes:
                    await self.store.append(envelopes)
            except ConcurrencyError:
                continue
            for envelope in envelopes:
                state = evolve_settings(state, envelope)
            self._state, self._loaded_at = state, time.monotonic()
            return json.dumps({"require_reason": state.require_reason, "version": state.version}).encode()
        raise ConcurrencyError("settings changed concurrently too often")
