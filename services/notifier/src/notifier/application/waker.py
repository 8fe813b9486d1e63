"""Wake-ups of the delivery workers: new deliveries queued, a channel's settings changed."""

from __future__ import annotations

import asyncio
from typing import Any


class Waker:
    """Wakes every idle worker when deliveries are queued (no wake-up is ever lost), and a
    channel's workers from their back-off when its settings change."""

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()
        self._settings: dict[str, set[asyncio.Event]] = {}

    def register(self) -> asyncio.Event:
        """An event for one worker."""
        event = asyncio.Event()
        self._events.add(event)
        return event

    def register_settings(self, channel: str) -> asyncio.Event:
        """An event for one worker of `channel`, set when that channel's settings change."""
        event = asyncio.Event()
        self._settings.setdefault(channel, set()).add(event)
        return event

    def wake(self, *_: Any) -> None:
        """Wake them all (also usable as a LISTEN callback)."""
        for event in self._events:
            event.set()

    def settings_changed(self, channel: str) -> None:
        """The channel's settings changed: end its workers' back-off, wake the idle ones."""
        for event in self._settings.get(channel, ()):
            event.set()
        self.wake()

    def on_settings_notice(self, _conn: Any, _pid: int, _name: str, payload: str) -> None:
        """The LISTEN callback of `channel_settings` (the payload is the channel)."""
        self.settings_changed(payload)
