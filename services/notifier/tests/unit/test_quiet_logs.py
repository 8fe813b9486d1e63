"""Info-level logs only when something happened: an empty NOTIFY poll says nothing at info."""

from __future__ import annotations

from typing import Any

from notifier.application.system_messages import SystemMessages
from shared.secrets import Sealer
from structlog.testing import capture_logs


class _NoStore:
    async def queue_many(self, batch: Any) -> None:
        raise AssertionError("an empty poll queues nothing")


async def test_an_empty_poll_logs_nothing_at_info() -> None:
    woken: list[int] = []
    handler = SystemMessages(store=_NoStore(), sealer=Sealer(Sealer.new_key()),  # type: ignore[arg-type]
                             wake=lambda: woken.append(1))
    with capture_logs() as logs:
        await handler.handle([])
    assert not [entry for entry in logs if entry["log_level"] in ("info", "warning", "error")], logs
    assert woken == [] and handler.queued == 0
