"""A stream dumped and loaded again: same sequences (gaps kept), subjects, headers, data and config."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.errors import NoStreamResponseError
from patchbay_cli.stream_files import dump_stream, load_stream, publish_when_served, read_messages
from shared.partitions import PartitionKey
from shared.streams import StreamSpec, ensure_streams

pytestmark = pytest.mark.servers


async def test_a_stream_comes_back_at_its_old_sequences(nats: NatsClient, tmp_path: Path) -> None:
    js = nats.jetstream()
    name = f"T{uuid.uuid4().hex[:8]}".upper()
    prefix = name.lower()
    spec = StreamSpec(name, [f"{prefix}.a.*"], partition_key=PartitionKey(f"{prefix}.a.*", 1))
    await ensure_streams(js, [spec])
    for i in range(1, 13):
        await js.publish(f"{prefix}.a.c{i % 3}", f"m{i}".encode(), headers={"Nats-Msg-Id": f"id-{i}"}
                         if i > 6 else {"Patchbay-Event-Type": "X"})
    await js.delete_msg(name, 5)
    await js.delete_msg(name, 12)  # the last one gone: the next sequence must stay 13
    await js.purge_stream(name, seq=3)  # the head gone: the stream starts at 3
    before = [(m.seq, m.subject, m.headers, m.data) for m in _read(await dump_stream(js, name, tmp_path), tmp_path)]
    assert [seq for seq, *_ in before] == [3, 4, 6, 7, 8, 9, 10, 11]
    assert all(subject.count(".") == 3 for _, subject, _, _ in before)  # stored with the partition token
    summary = json.loads((tmp_path / f"{name}.json").read_text())

    await js.delete_stream(name)
    restored, ids = await load_stream(js, tmp_path, summary, replicas=1)
    assert restored == 8 and ids == {f"id-{i}" for i in range(7, 12)}
    again = tmp_path / "again"
    again.mkdir()
    after = [(m.seq, m.subject, m.headers, m.data) for m in _read(await dump_stream(js, name, again), again)]
    assert after == before
    info = await js.stream_info(name)
    assert (info.state.first_seq, info.state.last_seq) == (3, 12)
    assert info.config.subjects == [f"{prefix}.a.*"] and info.config.subject_transform is not None
    assert info.config.duplicate_window == 120
    ack = await js.publish(f"{prefix}.a.c1", b"new")
    assert ack.seq == 13
    fresh = await js.get_msg(name, 13)
    assert fresh.subject.startswith(f"{prefix}.a.c1.")  # the transform is back


async def test_a_publish_waits_for_a_stream_that_takes_its_subjects_a_moment_later(nats: NatsClient) -> None:
    """On a cluster a fresh stream's subjects reach the other nodes a moment after its creation: the
    restore's publishes met "no response from stream" (a 503, nothing stored) and gave up at once."""
    js = nats.jetstream()
    name = f"L{uuid.uuid4().hex[:8]}".upper()
    subject = f"{name.lower()}.x"
    with pytest.raises(NoStreamResponseError):  # what the restore met, without waiting
        await js.publish(subject, b"early")

    async def made_late() -> None:
        await asyncio.sleep(0.5)
        await js.add_stream(name=name, subjects=[subject])

    started = time.monotonic()
    late = asyncio.create_task(made_late())
    try:
        ack = await publish_when_served(js, subject, b"first", {"Nats-Msg-Id": "m1"})
    finally:
        await late
    assert ack.stream == name and ack.seq == 1 and not ack.duplicate
    assert 0.4 < time.monotonic() - started < 5
    assert (await js.stream_info(name)).state.messages == 1  # the refused tries stored nothing
    await js.delete_stream(name)


def _read(summary: dict[str, object], directory: Path) -> list:  # type: ignore[type-arg]
    return list(read_messages(directory, str(summary["name"])))
