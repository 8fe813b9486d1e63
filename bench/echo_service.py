"""The baseline: a bare FastStream request/reply echo, the least any handler can cost."""

from __future__ import annotations

import asyncio
import os

from faststream.nats import NatsBroker
from shared.bus import seed_for
from shared.bus_identities import PROVISIONER, identity


async def main() -> None:
    """Echo on `bench.echo` until killed."""
    # the benchmarks' own subject: connected as the admin (the provisioner), as the load generator
    seed = seed_for(PROVISIONER)
    broker = NatsBroker(os.environ["PATCHBAY_NATS_URL"], logger=None, nkeys_seed_str=seed,
                        inbox_prefix=identity(PROVISIONER).inbox_prefix)

    @broker.subscriber("bench.echo", queue="echo", max_workers=1)
    async def echo(body: dict[str, object]) -> dict[str, object]:
        # the fastest FastStream form measured here: one worker, no context parameters
        return body

    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
