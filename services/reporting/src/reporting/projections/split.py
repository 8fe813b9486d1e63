"""A rebuild's first replay split by sequence range: the upper half read and written by a second process.

The rebuild's own process is its bottleneck (docs/performance.md, "Rebuild per event"): a second
process decodes and COPYs the upper half of a long stream while the first does the lower half,
both into the same fresh tables. Only projections whose bulk load keeps the lowest sequence of a
duplicate key whichever half wrote first (`Projection.bulk_split`: keyed after the load, ADR 0027)
are split.

The worker is started with the rebuild (its imports and connections take a second or more) and
takes ranges on stdin, one JSON line each; it prints `<done> <skipped>` after each batch and
`end` when a range is written, and exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# messages: below this a second process saves nothing
SPLIT_MIN = int(os.environ.get("PATCHBAY_REBUILD_SPLIT_MIN", "40000"))


@dataclass(frozen=True)
class Connect:
    """How a replay worker reaches the servers the rebuild uses (NATS as the provisioner)."""

    nats_url: str
    database_url: str
    server_settings: dict[str, str] = field(default_factory=dict)


class Worker:
    """The second process of one projection's rebuild."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, connect: Connect, projection: object) -> Worker:
        """Start it: it imports and connects while the rebuild prepares its tables."""
        kind = type(projection)
        spec = json.dumps({"connect": asdict(connect), "module": kind.__module__, "class": kind.__qualname__})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reporting.projections.split", spec,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def replay(
        self, stream: str, start: int, until: int, batch: int, on_progress: Callable[[int, int], None],
    ) -> None:
        """Replay [start, until] of `stream` there; on_progress(more done, more skipped) per batch."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"stream": stream, "start": start, "until": until,
                                          "batch": batch}).encode() + b"\n")
        await self.proc.stdin.drain()
        done = skipped = 0
        while (line := await self.proc.stdout.readline()) != b"end\n":
            if not line:
                raise RuntimeError(f"the replay worker of {stream} {start}-{until} exited"
                                   f" ({await self.proc.wait()})")
            now_done, now_skipped = (int(x) for x in line.split())
            on_progress(now_done - done, now_skipped - skipped)
            done, skipped = now_done, now_skipped

    async def close(self) -> None:
        """Let it exit (stdin closed); killed when it does not within 10 s."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def _work(spec: dict[str, Any]) -> None:
    import importlib

    import asyncpg
    from shared.stack_file import tool_nats

    from reporting.projections.bulk_codecs import bulk_codecs
    from reporting.projections.rebuild import Rebuilder

    class RangeReplay(Rebuilder):
        async def _record(self, state: str, **_: Any) -> None:
            return None  # the parent records the rebuild's state

        def _report(self) -> None:
            print(self.done, self.skipped, flush=True)

    connect = Connect(**spec["connect"])
    projection = getattr(importlib.import_module(spec["module"]), spec["class"])()
    nc = await tool_nats(connect.nats_url)
    conn = await asyncpg.connect(connect.database_url, server_settings=connect.server_settings)
    try:
        await bulk_codecs(conn)
        while line := await asyncio.to_thread(sys.stdin.readline):
            job = json.loads(line)
            [source] = [s for s in projection.sources if s.stream == job["stream"]]
            worker = RangeReplay(conn, nc.jetstream(), projection, batch=job["batch"])
            await worker._replay(source, job["start"], job["until"], conn, bulk=True)
            print("end", flush=True)
    finally:
        await conn.close()
        await nc.close()


def main() -> None:
    """The worker's entry point."""
    import gc

    import uvloop

    gc.disable()  # as the rebuild's replay: no reference cycles are made
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_work(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
