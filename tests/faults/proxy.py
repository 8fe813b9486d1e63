"""A small TCP proxy for network faults: latency both ways, links cut mid-stream, refusing for a while."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from devtools.embedded import free_port


@dataclass
class FaultyLink:
    """Listens on 127.0.0.1:`port` and forwards to `target_host`:`target_port`.

    `delay_s` is added to every chunk in each direction (a slow link, not a narrow one: chunks
    queue, so throughput stays). `cut()` aborts every open connection at once (an RST to both
    sides, whatever was in flight); `refusing` makes new connections close at once.
    """

    target_host: str
    target_port: int
    delay_s: float = 0.0
    port: int = field(default_factory=free_port)
    refusing: bool = False
    connections: int = 0  # accepted so far
    cuts: int = 0
    forwarded: int = 0  # bytes, both ways
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> FaultyLink:
        """Start listening."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    def url(self, original: str) -> str:
        """`original` (nats:// or postgresql://) pointed at the proxy instead of the server."""
        return original.replace(f"{self.target_host}:{self.target_port}", f"127.0.0.1:{self.port}")

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._open) // 2

    def cut(self) -> int:
        """Abort every open connection (both sides); return how many were cut."""
        cut = 0
        for writer in list(self._open):
            writer.transport.abort()
            cut += 1
        self._open.clear()
        self.cuts += 1
        return cut // 2

    async def close(self) -> None:
        """Stop listening and cut everything."""
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._open |= {client_w, server_w}
        for reader, writer, source in ((client_r, server_w, client_w), (server_r, client_w, server_w)):
            task = asyncio.create_task(self._pipe(reader, writer, source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    source: asyncio.StreamWriter) -> None:
        """Copy one direction (`source` is the reader's own socket), each chunk `delay_s` late, order kept."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                try:
                    writer.write(chunk)
                    await writer.drain()
                except OSError:
                    source.transport.abort()  # the reader then ends with an error too
                    raise
                self.forwarded += len(chunk)

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay_s, chunk))
            queue.put_nowait((0.0, b""))
            await sender
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, asyncio.IncompleteReadError):  # one side went away: so does the other
            writer.transport.abort()
            source.transport.abort()
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            self._open.discard(writer)
