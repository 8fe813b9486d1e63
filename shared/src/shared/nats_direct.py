"""Messages of chosen subscriptions handed straight from nats-py's protocol parser to a plain function.

nats-py turns every message into a `Msg` (a dataclass, its headers parsed), queues it for the
subscription's task and runs a coroutine of the callback per message: with its regular
expression per control line, 5-6 µs of one core per message, most of a history replay's read.
`route(nc, sid, handler)` makes the connection's parser hand the messages of one subscription
to `handler(subject, reply, data, headers)` (bytes; the headers raw, None without) as they are
cut from the buffer: the control line split at its spaces, no object, no queue, no task.

The parser is nats-py's own object with its `parse` replaced on that instance: the same buffer
and state (a payload nats-py was waiting for is finished here), the messages of every other
subscription passed on to nats-py as before (in order),
and any other protocol line (PING, +OK, INFO, -ERR) handed to nats-py's own parser one at a time.
A message spread over many reads (a large payload) is cut once all of it is there: the reads
before only append to the buffer (linear, not a copy of the buffer per read). When the last
route goes, the parser is nats-py's own again. When nats-py's internals are not as expected
(another version), `route` says so and changes nothing: the caller keeps its ordinary callback.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.errors import ProtocolError
from nats.protocol import parser as nats_parser

Handler = Callable[[bytes, bytes, bytes, bytes | None], None]  # subject, reply, data, raw headers
_ROUTES = "_patchbay_routes"
# (buffer, bytes it must hold before anything more can be cut from it): the buffer named, as a
# reconnect's `Parser.reset()` starts a new one (the message waited for is gone with the old)
_NEED = "_patchbay_need"
_CONTROL = nats_parser.AWAITING_CONTROL_LINE


def route(nc: NatsClient, sid: int, handler: Handler) -> bool:
    """Hand this subscription's messages to `handler`; False (nothing changed) if it cannot."""
    ps = getattr(nc, "_ps", None)
    if not isinstance(ps, nats_parser.Parser) or not all(
            hasattr(ps, a) for a in ("buf", "state", "nc")) or not hasattr(nc, "_process_msg"):
        return False
    routes: dict[int, Handler] | None = getattr(ps, _ROUTES, None)
    if routes is None:
        routes = {}
        setattr(ps, _ROUTES, routes)
        setattr(ps, _NEED, (None, 0))
        ps.parse = MethodType(_parse, ps)  # type: ignore[method-assign]
    routes[sid] = handler
    return True


def unroute(nc: NatsClient, sid: int) -> None:
    """Back to nats-py's own handling for this subscription; after the last, nats-py's own parser."""
    ps: Any = getattr(nc, "_ps", None)
    routes = getattr(ps, _ROUTES, None)
    if routes is None:
        return
    routes.pop(sid, None)
    # buffer and state as nats-py's parse takes them: a line's start, or its own payload wait
    if not routes:
        del ps.parse  # the instance's own attribute: `Parser.parse` again
        delattr(ps, _ROUTES)
        delattr(ps, _NEED)


async def _parse(self: Any, data: bytes = b"") -> None:
    """nats-py's `Parser.parse`, MSG and HMSG cut here; everything else by nats-py's parser."""
    buf: bytearray = self.buf
    buf.extend(data)
    waiting, needed = getattr(self, _NEED)
    if waiting is buf and len(buf) < needed:
        return  # the message being cut is not all here yet: nothing copied, nothing scanned
    if self.state != _CONTROL and not await _finish_payload(self):
        return
    view = bytes(buf)  # one copy of what this read completes (~32 KiB); its slices are bytes at once
    routes: dict[int, Handler] = getattr(self, _ROUTES)
    stats = self.nc.stats
    end = len(view)
    pos = need = 0
    try:
        while pos < end:
            eol = view.find(b"\r\n", pos)
            if eol < 0:
                break
            if view.startswith(b"HMSG ", pos) or view.startswith(b"MSG ", pos):
                args = view[pos:eol].split()
                try:
                    if len(args[0]) == 4:  # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                        size, header_size = int(args[-1]), int(args[-2])
                        reply = args[3] if len(args) == 6 else b""
                    else:  # MSG <subject> <sid> [reply] <bytes>
                        size, header_size = int(args[-1]), 0
                        reply = args[3] if len(args) == 5 else b""
                    sid = int(args[2])
                except (IndexError, ValueError):
                    raise ProtocolError("nats: malformed MSG") from None
                start = eol + 2
                if end < start + size + 2:  # the payload is not all here: this line again once it is
                    need = start + size + 2 - pos
                    break
                headers = view[start:start + header_size] if header_size else None
                payload = view[start + header_size:start + size]
                pos = start + size + 2
                handler = routes.get(sid)
                if handler is not None:
                    stats["in_msgs"] += 1
                    stats["in_bytes"] += size - header_size
                    handler(args[1], reply, payload, headers)
                else:
                    await self.nc._process_msg(sid, args[1], reply, payload, headers)
            else:  # one other protocol line, by nats-py's own parser
                line = nats_parser.Parser(self.nc)
                line.buf = bytearray(view[pos:eol + 2])
                pos = eol + 2
                await nats_parser.Parser.parse(line)
    finally:
        del buf[:pos]  # from the front: CPython moves the bytearray's start, no copy of the rest
        if getattr(self, _ROUTES, None) is routes:  # still routed (a handler may have unrouted the last)
            setattr(self, _NEED, (buf, need))


async def _finish_payload(self: Any) -> bool:
    """The payload nats-py's own parse was waiting for when routing began (False: not all here).

    Delivered here, not by nats-py's parse, which would go on with the rest of the buffer in its
    own way: a routed message after it would reach its subscription's queue instead, out of order."""
    needed, header_size = self.needed, self.header_needed
    if len(self.buf) < needed + 2:
        return False
    headers = bytes(self.buf[:header_size]) if header_size else None
    payload = bytes(self.buf[header_size:needed])
    del self.buf[:needed + 2]
    self.state, self.needed, self.header_needed = _CONTROL, 0, 0
    arg = self.msg_arg
    subject, sid, reply = bytes(arg["subject"]), arg["sid"], bytes(arg["reply"])
    handler = getattr(self, _ROUTES).get(sid)
    if handler is not None:
        self.nc.stats["in_msgs"] += 1
        self.nc.stats["in_bytes"] += len(payload)
        handler(subject, reply, payload, headers)
    else:
        await self.nc._process_msg(sid, subject, reply, payload, headers)
    return True
