"""The baseline for dial permission: a bare nats-py request/reply echo (callback, no task per message)."""

from __future__ import annotations

import asyncio
import os

from nats.aio.msg import Msg

from shared import bus


async def main() -> None:
    """Echo on `bench.nats-echo` until killed."""
    nc = await bus.connect(os.environ["PATCHBAY_NATS_URL"], "provisioner")

    async def echo(msg: Msg) -> None:
        await nc.publish(msg.reply, msg.data)

    await nc.subscribe("bench.nats-echo", queue="echo", cb=echo)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
