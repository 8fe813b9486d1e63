"""The parser hand-over on recorded protocol bytes: split anywhere, routed or not, in order."""

from __future__ import annotations

import time
from typing import Any

import pytest
from nats.errors import ProtocolError
from nats.protocol.parser import AWAITING_MSG_PAYLOAD, Parser
from shared.nats_direct import route, unroute


class Recorder:
    """What the parser hands to nats-py's client (its `_process_msg`, `_process_ping`) here."""

    def __init__(self) -> None:
        self.stats = {"in_msgs": 0, "in_bytes": 0}
        self.seen: list[tuple[str, Any, bytes]] = []
        self._ps = Parser(self)

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: Any) -> None:
        self.seen.append(("nats-py", sid, bytes(data)))

    async def _process_ping(self) -> None:
        self.seen.append(("ping", None, b""))


def _hmsg(sid: int, n: int, size: int = 40) -> bytes:
    headers = b"NATS/1.0\r\nNats-Msg-Id: m%d\r\n\r\n" % n
    data = (b"%d:" % n).ljust(size, b"x")
    reply = b"$JS.ACK.S.c.1.%d.%d.1765000000000000000.0" % (n, n)
    return b"HMSG in.%d %d %s %d %d\r\n%s%s\r\n" % (sid, sid, reply, len(headers), len(headers) + len(data),
                                                    headers, data)


async def test_routed_and_other_messages_keep_their_order_whatever_the_reads() -> None:
    wire = b"".join([_hmsg(7, 0), b"PING\r\n", b"MSG other 3 5\r\nhello\r\n", _hmsg(7, 1, 5000),
                     _hmsg(9, 2), _hmsg(7, 3), b"+OK\r\n", _hmsg(7, 4)])
    for step in (1, 7, 64, 1000, len(wire)):
        nc = Recorder()
        got: list[tuple[bytes, bytes, bytes, bytes | None]] = []
        assert route(nc, 7, lambda s, r, d, h, got=got: got.append((s, r, d, h)))  # type: ignore[arg-type, misc]
        for i in range(0, len(wire), step):
            await nc._ps.parse(wire[i:i + step])
        assert [d[:2] for _, _, d, _ in got] == [b"0:", b"1:", b"3:", b"4:"], step
        assert got[1][0] == b"in.7" and got[1][1].endswith(b".1.1765000000000000000.0") and len(got[1][2]) == 5000
        assert got[0][3] == b"NATS/1.0\r\nNats-Msg-Id: m0\r\n\r\n"
        assert nc.seen == [("ping", None, b""), ("nats-py", 3, b"hello"), ("nats-py", 9, _hmsg(9, 2)[-42:-2])]
        assert nc.stats["in_msgs"] == 4 and not nc._ps.buf
        unroute(nc, 7)
        await nc._ps.parse(_hmsg(7, 5))
        assert nc.seen[-1][:2] == ("nats-py", 7) and len(got) == 4


async def test_a_payload_nats_py_was_waiting_for_is_finished_before_the_routed_messages() -> None:
    nc = Recorder()
    first, second = _hmsg(9, 0, 3000), _hmsg(7, 1)
    await nc._ps.parse(first[:100])  # nats-py's own parse: the control line, part of the payload
    assert nc._ps.state == AWAITING_MSG_PAYLOAD
    got: list[bytes] = []
    route(nc, 7, lambda s, r, d, h: got.append(d))  # type: ignore[arg-type]
    await nc._ps.parse(first[100:] + second)
    assert nc.seen == [("nats-py", 9, first[-3002:-2])] and [d[:2] for d in got] == [b"1:"]


async def test_a_malformed_message_line_is_a_protocol_error() -> None:
    nc = Recorder()
    route(nc, 7, lambda *_: None)
    with pytest.raises(ProtocolError):
        await nc._ps.parse(b"HMSG in.7 seven 12 40\r\n")


async def _fed(wire: bytes, step: int) -> tuple[float, list[int]]:
    """CPU seconds to parse `wire` in reads of `step` bytes (sid 7 routed), and the sizes cut."""
    nc = Recorder()
    got: list[int] = []
    route(nc, 7, lambda s, r, d, h: got.append(len(d)))  # type: ignore[arg-type]
    started = time.process_time()
    for i in range(0, len(wire), step):
        await nc._ps.parse(wire[i:i + step])
    return time.process_time() - started, got


async def test_a_payload_over_thousands_of_reads_costs_about_what_one_read_costs() -> None:
    # 8 MiB in 2 KiB reads: a copy of the buffer per read would move ~17 GB (seconds); appending, ~8 MiB
    wire = _hmsg(7, 0, 8 << 20) + _hmsg(7, 1)
    whole, got = await _fed(wire, len(wire))
    assert got == [8 << 20, 40]
    spread, got = await _fed(wire, 2048)
    assert got == [8 << 20, 40]
    assert spread < max(0.15, 10 * whole), (spread, whole)


async def test_the_last_unroute_gives_nats_py_its_own_parser_back_mid_message() -> None:
    nc = Recorder()
    got: list[bytes] = []
    route(nc, 7, lambda s, r, d, h: got.append(d))  # type: ignore[arg-type]
    route(nc, 8, lambda s, r, d, h: got.append(d))  # type: ignore[arg-type]
    wire = _hmsg(7, 0) + _hmsg(7, 1, 3000)
    await nc._ps.parse(wire[:200])  # the first message, part of the second
    unroute(nc, 8)
    assert "parse" in vars(nc._ps)  # one route left: still cut here
    unroute(nc, 7)
    assert "parse" not in vars(nc._ps) and nc._ps.parse.__func__ is Parser.parse
    await nc._ps.parse(wire[200:])  # nats-py's own parser finishes the message it was waiting for
    assert [d[:2] for d in got] == [b"0:"] and nc.seen == [("nats-py", 7, wire[-3002:-2])]
    assert not nc._ps.buf
    route(nc, 7, lambda s, r, d, h: got.append(d))  # type: ignore[arg-type]
    await nc._ps.parse(_hmsg(7, 2))
    assert [d[:2] for d in got] == [b"0:", b"2:"]


async def test_a_reconnect_mid_message_leaves_no_wait_for_the_lost_bytes() -> None:
    nc = Recorder()
    got: list[bytes] = []
    route(nc, 7, lambda s, r, d, h: got.append(d))  # type: ignore[arg-type]
    await nc._ps.parse(_hmsg(7, 0, 5000)[:300])  # waiting for 5000 bytes
    nc._ps.reset()  # what nats-py does on a reconnect: a new, empty buffer
    await nc._ps.parse(_hmsg(7, 1))
    assert [d[:2] for d in got] == [b"1:"]
