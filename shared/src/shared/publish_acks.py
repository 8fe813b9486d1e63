"""Waiting for JetStream publish acks without waiting forever."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

ACK_TIMEOUT_S = 10.0


async def wait_acks(futures: Sequence[asyncio.Future[Any]], timeout: float = ACK_TIMEOUT_S) -> None:  # noqa: ASYNC109
    """Wait for every `publish_async` ack; on a timeout or an error, cancel the rest and raise.

    nats-py's publish_async futures have no deadline: an ack lost with a dying server (a
    reconnect, a cluster node killed, a stream leader changing) would leave a relay waiting
    forever. Raising lets the relay start over from its outbox; `Nats-Msg-Id` dedup absorbs
    what was already stored.
    """
    try:
        await asyncio.wait_for(asyncio.gather(*futures), timeout)
    except BaseException:
        for future in futures:
            future.cancel()  # frees nats-py's pending-publish slot of each
        raise
