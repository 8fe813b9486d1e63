"""Deliveries out of attempts go to DEAD_LETTERS (`dlq.notifier.delivery`), exactly as recorded."""

from __future__ import annotations

import asyncio
import json

import structlog
from nats.js import JetStreamContext

from notifier.adapters.delivery_store import DeliveryStore

log = structlog.get_logger(__name__)

SUBJECT = "dlq.notifier.delivery"


class DeadLetterPublisher:
    """Publishes dead-lettered deliveries (flagged in the same statement as their failure)."""

    def __init__(self, store: DeliveryStore, js: JetStreamContext) -> None:
        self.store = store
        self.js = js
        self.published = 0

    async def publish_pending(self) -> int:
        """Publish what is pending; JetStream dedup (`Nats-Msg-Id`) absorbs a republish after a crash."""
        rows = await self.store.pending_dead_letters()
        for row in rows:
            body = {k: (str(v) if v is not None and k.endswith("_id") else v) for k, v in dict(row).items()}
            await self.js.publish(
                SUBJECT,
                json.dumps(body).encode(),
                headers={
                    "Nats-Msg-Id": f"dlq:notifier:{row['delivery_id']}",
                    "Patchbay-Error": str(row["last_error"] or "")[:1000],
                    "Patchbay-Consumer": "notifier-delivery",
                },
            )
        if rows:
            await self.store.mark_dead_letters_published([r["delivery_id"] for r in rows])
            self.published += len(rows)
        return len(rows)

    async def run(self, interval_s: float) -> None:
        """Publish now and then, until cancelled."""
        while True:
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dead_letter_publish_failed", error=str(exc))
            await asyncio.sleep(interval_s)
