"""The rebuilds' stream reader against a real nats-server: ranges, filters, counts, the write overlap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from shared.stream_replay import Delivery, PullReader, overlap, pending_count, replay, stream_seq
from shared.streams import StreamSpec, ensure_streams

from shared import pull_reader, stream_replay

pytestmark = pytest.mark.servers


async def _stream(nats: NatsClient, count: int) -> tuple[JetStreamContext, str]:
    """A fresh stream: sequence n on `<name>.a` when n is odd, `<name>.b` when even; data `n`."""
    js = nats.jetstream()
    name = f"R{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"])])
    acks = [await js.publish_async(f"{name.lower()}.{'a' if n % 2 else 'b'}", str(n).encode())
            for n in range(1, count + 1)]
    await asyncio.gather(*acks)
    return js, name


async def _read(js: JetStreamContext, stream: str, subjects: tuple[str, ...], start: int, until: int,
                batch: int) -> list[list[int]]:
    return [[stream_seq(m) for m in msgs]
            async for msgs in replay(js, stream, subjects, start_seq=start, until_seq=until, batch=batch)]


async def test_replay_reads_the_range_in_order_in_batches_and_leaves_no_consumer(nats: NatsClient) -> None:
    js, stream = await _stream(nats, 1200)
    chunks = await _read(js, stream, (), 1, 2**62, 100)
    assert [s for c in chunks for s in c] == list(range(1, 1201))
    assert all(len(c) <= 100 for c in chunks) and len(chunks) >= 12
    # a range that ends mid-batch and starts past the first message
    chunks = await _read(js, stream, (), 151, 777, 100)
    assert [s for c in chunks for s in c] == list(range(151, 778))
    assert [m.data async for msgs in replay(js, stream, (), start_seq=5, until_seq=5) for m in msgs] == [b"5"]
    assert await _read(js, stream, (), 10, 9, 100) == []  # an empty range: no consumer made at all
    assert await _read(js, stream, (), 1201, 2**62, 100) == []  # past the end
    assert [c.name async for c in _consumers(js, stream)] == []


async def test_replay_and_pending_count_keep_to_the_subjects(nats: NatsClient) -> None:
    js, stream = await _stream(nats, 501)
    odd = (f"{stream.lower()}.a",)
    assert await pending_count(js, stream, odd) == 251
    assert await pending_count(js, stream, odd, 400) == 51
    assert await pending_count(js, stream, ()) == 501
    chunks = await _read(js, stream, odd, 1, 500, 64)
    assert [s for c in chunks for s in c] == list(range(1, 500, 2))  # 501 is past until
    assert [c.name async for c in _consumers(js, stream)] == []


async def test_overlap_prepares_the_next_chunk_while_one_is_written() -> None:
    events: list[str] = []
    written: list[int] = []
    second_prepared = asyncio.Event()

    def prepare(chunk: list[int]) -> list[int]:
        events.append(f"prepare {chunk[0]}")
        if chunk[0] == 2:
            second_prepared.set()
        return chunk

    async def write(chunk: list[int]) -> None:
        events.append(f"write {chunk[0]}")
        if chunk[0] == 1:  # the first write waits until the next chunk is prepared beside it
            await asyncio.wait_for(second_prepared.wait(), 10)
        written.extend(chunk)

    async def chunks() -> AsyncIterator[list[int]]:
        for i in range(1, 6):
            yield [i]
            await asyncio.sleep(0)

    await overlap(chunks(), prepare, write, depth=2)
    assert written == [1, 2, 3, 4, 5]
    assert events.index("write 1") < events.index("prepare 2") < events.index("write 2")


async def test_a_failed_write_stops_the_read_and_is_raised_without_a_hang(nats: NatsClient) -> None:
    js, stream = await _stream(nats, 1000)
    prepared: list[int] = []

    async def write(first: int) -> None:
        if first > 100:
            raise ValueError("the database said no")

    with pytest.raises(ValueError, match="said no"):
        await asyncio.wait_for(overlap(
            replay(js, stream, (), start_seq=1, until_seq=1000, batch=50),
            lambda msgs: prepared.append(stream_seq(msgs[0])) or stream_seq(msgs[0]), write, depth=1), 10)
    assert len(prepared) < 20  # stopped well before the end
    await asyncio.sleep(0)  # the reader's consumer is deleted as it closes
    assert [c.name async for c in _consumers(js, stream)] == []


async def test_a_failed_read_cancels_the_writes(nats: NatsClient) -> None:
    cancelled = asyncio.Event()

    async def chunks() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.05)
        raise ConnectionError("the stream went away")

    async def write(item: int) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(ConnectionError):
        await asyncio.wait_for(overlap(chunks(), lambda x: x, write), 10)
    assert cancelled.is_set()


async def _consumers(js: JetStreamContext, stream: str) -> AsyncIterator[object]:
    for info in await js.consumers_info(stream):
        yield info


async def test_the_parser_hands_the_replay_over_while_other_subscriptions_get_theirs_in_order(
    nats: NatsClient,
) -> None:
    js, stream = await _stream(nats, 3000)
    got: list[bytes] = []

    async def side(msg: Msg) -> None:
        got.append(msg.data)

    sub = await nats.subscribe("reader.side", cb=side)
    name = await _consumer(js, stream)
    reader = PullReader(nats, stream, name, batch=250)
    seqs: list[int] = []
    sent = 0
    async for msgs in reader.chunks():
        assert reader.direct and all(isinstance(m, Delivery) for m in msgs)
        seqs += [stream_seq(m) for m in msgs]
        for _ in range(20):  # other messages on the same connection, between the replay's
            await nats.publish("reader.side", str(sent).encode())
            sent += 1
        await nats.flush()
    assert seqs == list(range(1, 3001))
    await wait_for(lambda: len(got) == sent, timeout=10)
    assert got == [str(n).encode() for n in range(sent)]
    first = msgs[0]
    assert first.metadata.sequence.stream == stream_seq(first) and first.metadata.stream == stream
    assert "parse" not in vars(nats._ps)  # the replay's route gone: nats-py's own parser again
    assert await nats.request("$JS.API.INFO", b"", timeout=5)  # requests go on after the replay
    await sub.unsubscribe()


async def test_replay_without_the_parser_hand_over_reads_the_same(
    nats: NatsClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    js, stream = await _stream(nats, 700)
    monkeypatch.setattr(pull_reader, "route", lambda *_: False)  # as with another nats-py
    chunks = await _read(js, stream, (), 3, 650, 100)
    assert [s for c in chunks for s in c] == list(range(3, 651))


async def _consumer(js: JetStreamContext, stream: str) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(stream, ConsumerConfig(name=name, ack_policy=AckPolicy.NONE, mem_storage=True,
                                                 inactive_threshold=30.0))
    return name


async def test_messages_larger_than_a_read_come_whole(nats: NatsClient) -> None:
    js = nats.jetstream()
    name = f"R{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"])])
    bodies = [bytes([65 + n]) * (70_000 + n) for n in range(6)]  # each more than two 32 KiB reads
    for n, body in enumerate(bodies):
        await js.publish(f"{name.lower()}.big", body, headers={"Nats-Msg-Id": f"m{n}"})
    got = [m async for msgs in replay(js, name, (), start_seq=1, until_seq=2**62, batch=4) for m in msgs]
    assert [m.data for m in got] == bodies
    assert [m.headers["Nats-Msg-Id"] for m in got] == [f"m{n}" for n in range(6)]
    assert all(isinstance(m, Delivery) and m.subject == f"{name.lower()}.big" for m in got)


class _UnheardReader(PullReader):
    """The first `left` readers ask before their consumer is heard of (as a cluster's server can,
    the new consumer's interest not yet there): the server answers 503, no messages."""

    left = 0

    def __init__(self, nc: NatsClient, stream: str, consumer: str, **kw: int) -> None:
        super().__init__(nc, stream, consumer, **kw)
        if _UnheardReader.left > 0:
            _UnheardReader.left -= 1
            self.subject = f"{self.subject}-not-yet"


async def test_a_read_ended_early_by_the_server_is_read_again_not_taken_as_the_end(
    nats: NatsClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    js, stream = await _stream(nats, 30)
    monkeypatch.setattr(stream_replay, "PullReader", _UnheardReader)
    _UnheardReader.left = 2  # the whole read, then a filtered one
    assert [s for c in await _read(js, stream, (), 1, 30, 7) for s in c] == list(range(1, 31))
    assert [s for c in await _read(js, stream, (f"{stream.lower()}.b",), 3, 29, 7) for s in c] == list(
        range(4, 29, 2))
    assert _UnheardReader.left == 0
    # a filtered read that ends before until_seq because the subject has no more is not short
    assert [s for c in await _read(js, stream, (f"{stream.lower()}.a",), 25, 2**62, 7) for s in c] == [
        25, 27, 29]
    assert not [c for c in (await js.consumers_info(stream)) if c.name.startswith("replay-")]


async def test_a_read_that_stays_short_fails_instead_of_leaving_a_gap(
    nats: NatsClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    js, stream = await _stream(nats, 10)
    monkeypatch.setattr(stream_replay, "PullReader", _UnheardReader)
    monkeypatch.setattr(stream_replay, "SHORT_READ_BUDGET_S", 0.5)
    _UnheardReader.left = 1000
    with pytest.raises(stream_replay.ShortRead, match="503"):
        await _read(js, stream, (), 1, 10, 4)
    _UnheardReader.left = 0
