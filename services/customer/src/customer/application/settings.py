"""Settings aggregates, read through a short cache and changed by events.

`SettingsService` keeps the customer service's own settings (audit, number range);
`FieldSettings` keeps a settings model whose events carry `{field: {old, new}}` changes
(PayPal, sign-up).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from shared.contracts.customer import CommandMeta, SetAuditSettings
from shared.contracts.events import REGISTRY
from shared.envelope import EventEnvelope, Metadata
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import ConcurrencyError, EventStore

from customer.domain import events as ev
from customer.domain.decide import decide_audit_settings
from customer.domain.evolve import evolve_settings
from customer.domain.state import SettingsState

M = TypeVar("M", bound=BaseModel)
RETRIES = 5


def command_metadata(meta: CommandMeta) -> Metadata:
    """The metadata of the events a command makes."""
    return Metadata(
        actor=meta.actor, correlation_id=meta.correlation_id, causation_id=meta.command_id,
        command_id=meta.command_id, reason=meta.reason,
    )


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
        for _ in range(RETRIES):
            state = await self.fresh()
            envelopes = [
                REGISTRY.envelope(
                    d, category=ev.SETTINGS_CATEGORY, stream_id=ev.SETTINGS_STREAM,
                    version=state.version + i + 1, metadata=command_metadata(meta),
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
        state = await self.change(lambda now: decide_audit_settings(now, cmd.require_reason), cmd.meta)
        return json.dumps({"require_reason": state.require_reason, "version": state.version}).encode()


class FieldSettings(Generic[M]):
    """A settings model kept as a stream of `{field: {old, new}}` changes, cached for `ttl_s`."""

    def __init__(
        self, store: EventStore, *, stream_id: str, model: type[M],
        event: Callable[[dict[str, Any]], ev.Event], what: str, ttl_s: float = 1.0,
    ) -> None:
        self.store = store
        self.stream_id = stream_id
        self.model = model
        self.fields = tuple(model.model_fields)
        self.event = event
        self.what = what
        self.ttl_s = ttl_s
        self._cached: tuple[M, int] = (model(), 0)
        self._loaded_at = float("-inf")

    def fold(self, events: list[EventEnvelope]) -> tuple[M, int]:
        """The settings and their version from the stream's events."""
        values: dict[str, Any] = self.model().model_dump()
        version = 0
        for event in events:
            values |= {k: v["new"] for k, v in event.data["changes"].items()}
            version = event.version
        return self.model.model_validate(values), version

    async def current(self) -> tuple[M, int]:
        """Settings and version, re-read when the cached copy is older than the TTL."""
        if time.monotonic() - self._loaded_at > self.ttl_s:
            events = (await self.store.load([self.stream_id]))[self.stream_id]
            self._cached, self._loaded_at = self.fold(events), time.monotonic()
        return self._cached

    async def reply(self) -> bytes:
        """The settings as JSON, with their version."""
        settings, version = await self.current()
        return orjson.dumps({**settings.model_dump(mode="json"), "version": version})

    async def change(self, values: BaseModel, meta: CommandMeta) -> bytes:
        """Change the settings to these values (only the fields that differ make the event)."""
        new = self.model.model_validate(values.model_dump(include=set(self.fields)))
        for _ in range(RETRIES):
            self._loaded_at = float("-inf")
            old, version = await self.current()
            changes = {
                k: {"old": getattr(old, k), "new": getattr(new, k)}
                for k in self.fields if getattr(old, k) != getattr(new, k)
            }
            if not changes:
                return await self.reply()
            envelope = REGISTRY.envelope(
                self.event(changes), category=ev.SETTINGS_CATEGORY, stream_id=self.stream_id,
                version=version + 1, metadata=command_metadata(meta),
            )
            try:
                await self.store.append([envelope])
            except ConcurrencyError:
                continue
            self._cached, self._loaded_at = (new, version + 1), time.monotonic()
            return await self.reply()
        raise ServiceError(ErrorCode.CONFLICT, f"the {self.what} changed concurrently; retry")
