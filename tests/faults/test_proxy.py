"""The fault proxy itself: bytes pass in order with the latency asked, a cut resets both sides."""

from __future__ import annotations

import asyncio
import time

from .proxy import FaultyLink


async def ended(reader: asyncio.StreamReader) -> bool:
    """The connection is gone: end of stream or reset, within 5 s."""
    try:
        return await asyncio.wait_for(reader.read(10), 5) == b""
    except ConnectionResetError:
        return True


async def test_the_link_delays_keeps_order_and_cuts() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = await FaultyLink("127.0.0.1", port, delay_s=0.05).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        started = time.monotonic()
        for i in range(20):
            writer.write(f"{i},".encode())
        await writer.drain()
        expected = "".join(f"{i}," for i in range(20)).encode()
        got = await asyncio.wait_for(reader.readexactly(len(expected)), 5)
        assert got == expected
        assert time.monotonic() - started >= 0.1  # 50 ms each way
        assert link.cut() == 1
        assert await ended(reader)  # reset: the client sees the end
        writer.close()
        link.refusing = True
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        assert await ended(reader)
        writer.close()
        assert link.connections == 1
    finally:
        await link.close()
        server.close()
