"""The baseline: a bare FastStream request/reply echo, the least any handler can cost."""

from __future__ import annotations

import asyncio
import os

from faststream.nats import NatsBroker


async def main() -> None:
    """Echo on `bench.echo` until killed."""
    broker = NatsBroker(os.environ["PATCHBAY_NATS_URL"], logger=None)

    @broker.subscriber("bench.echo", queue="echo", max_workers=1)
    async def echo(body: dict[str, object]) -> dict[str, object]:
        # the fastest FastStream form measured here: one worker, no context parameters
        return body

    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
