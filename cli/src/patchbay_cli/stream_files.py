"""Every message of a JetStream stream to a file and back, with its sequence, subject and headers.

nats-py exposes no stream snapshot API, so a backup reads each stream through an ephemeral
consumer (no acks, in memory) up to the last sequence it had when the read began, and writes one
JSON line per message (`seq`, `subject`, `headers`, base64 `data`, `time`) into a gzip file
beside the stream's config and state. A restore creates the stream with its first sequence and
publishes the messages in order, so every message gets its old sequence back: a gap (a message
deleted, a work item done) is kept by publishing a filler there and deleting it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck, StreamConfig
from nats.js.errors import NoStreamResponseError

Progress = Callable[[int, int], None]  # (done, total)
FILLER = "_patchbay_restore"  # the subject of gap fillers (deleted at once)
DEDUP_WHILE_RESTORING_S = 0.1  # JetStream's least duplicate window
NO_STREAM_WAIT_S = 10.0  # how long a publish waits for a stream just made to take its subjects


@dataclass(frozen=True)
class StoredMessage:
    """One message as the stream stored it."""

    seq: int
    subject: str
    headers: dict[str, str] | None
    data: bytes
    time: str

    def line(self) -> str:
        """The message as one JSON line."""
        return json.dumps({"seq": self.seq, "subject": self.subject, "headers": self.headers,
                           "data": base64.b64encode(self.data).decode(), "time": self.time}) + "\n"

    @classmethod
    def parse(cls, line: str) -> StoredMessage:
        """A message back from its JSON line."""
        raw = json.loads(line)
        return cls(raw["seq"], raw["subject"], raw["headers"], base64.b64decode(raw["data"]), raw["time"])


async def dump_stream(js: JetStreamContext, stream: str, out_dir: Path, progress: Progress | None = None,
                      batch: int = 1000) -> dict[str, Any]:
    """Write the stream's config, state and messages (up to its last sequence now); return its summary."""
    info = await js.stream_info(stream)
    last, first = info.state.last_seq, info.state.first_seq
    total = info.state.messages
    name = f"backup-{uuid.uuid4().hex[:12]}"
    count = 0
    with gzip.open(out_dir / f"{stream}.jsonl.gz", "wt", compresslevel=3) as out:
        if total:
            await js.add_consumer(stream, ConsumerConfig(
                name=name, ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                inactive_threshold=60.0, mem_storage=True))
            sub = await js.pull_subscribe_bind(name, stream=stream)
            try:
                done = False
                while not done:
                    try:
                        msgs = await sub.fetch(batch, timeout=2.0)
                    except TimeoutError:
                        break  # nothing more (the rest was deleted while reading)
                    for msg in msgs:
                        meta = msg.metadata
                        if meta.sequence.stream > last:
                            done = True
                            break
                        headers = dict(msg.headers or {}) or None
                        out.write(StoredMessage(meta.sequence.stream, msg.subject, headers, msg.data,
                                                meta.timestamp.isoformat()).line())
                        count += 1
                        if meta.sequence.stream == last:
                            done = True
                    if progress:
                        progress(count, total)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
                with contextlib.suppress(Exception):
                    await js.delete_consumer(stream, name)
    summary = {"name": stream, "config": info.config.as_dict(), "first_seq": first, "last_seq": last,
               "messages": count}
    (out_dir / f"{stream}.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def read_messages(in_dir: Path, stream: str) -> Iterator[StoredMessage]:
    """The messages of a backed-up stream, in order."""
    with gzip.open(in_dir / f"{stream}.jsonl.gz", "rt") as lines:
        for line in lines:
            yield StoredMessage.parse(line)


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def restore_config(summary: dict[str, Any], in_dir: Path, replicas: int) -> StreamConfig:
    """The config to restore into: the old one without transform or dedup, its stored subjects allowed."""
    config: StreamConfig = StreamConfig.from_response(dict(summary["config"]))
    subjects = list(config.subjects or [])
    for msg in read_messages(in_dir, summary["name"]):  # transformed subjects (partition tokens)
        if not any(_matches(p, msg.subject) for p in subjects):
            tokens = msg.subject.split(".")
            subjects.append(".".join(tokens[:2] + ["*"] * (len(tokens) - 2)))
    config.subjects = [*subjects, f"{FILLER}.{summary['name']}"]
    config.subject_transform = None
    config.duplicate_window = DEDUP_WHILE_RESTORING_S  # messages that shared a dedup id long apart
    config.first_seq = summary["first_seq"] if summary["first_seq"] > 1 else None
    config.num_replicas = replicas
    return config


async def publish_when_served(js: JetStreamContext, subject: str, data: bytes,
                              headers: dict[str, str] | None = None) -> PubAck:
    """Publish, waiting out "no response from stream" (a 503: nothing was stored) for NO_STREAM_WAIT_S.

    A stream just created on a NATS cluster takes its subjects on every node a moment later (the
    server that answered the create may know it before the one this client is connected to), and
    a leader change leaves it without one for a moment; nats-py does not retry (the Go client
    retries this 503 twice), so the restore's first publish into a fresh clustered stream failed.
    """
    deadline = time.monotonic() + NO_STREAM_WAIT_S
    while True:
        try:
            return await js.publish(subject, data, headers=headers)
        except NoStreamResponseError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.1)


async def load_stream(js: JetStreamContext, in_dir: Path, summary: dict[str, Any], *, replicas: int,
                      keep: Callable[[StoredMessage], bool] = lambda _: True,
                      progress: Progress | None = None) -> tuple[int, set[str]]:
    """Create the stream and publish its messages at their old sequences; (restored, kept msg ids)."""
    name = summary["name"]
    await js.add_stream(restore_config(summary, in_dir, replicas))
    expected = max(summary["first_seq"], 1)  # an empty stream that never held a message says 0
    restored = 0
    ids: set[str] = set()
    filler = f"{FILLER}.{name}"

    async def fill_to(seq: int) -> None:
        nonlocal expected
        while expected < seq:
            ack = await publish_when_served(js, filler, b"")
            await js.delete_msg(name, ack.seq)
            expected = ack.seq + 1

    for msg in read_messages(in_dir, name):
        await fill_to(msg.seq)
        if keep(msg):
            ack = await publish_when_served(js, msg.subject, msg.data, msg.headers)
            for _ in range(3):  # the same dedup id restored a moment ago: let the window pass
                if not ack.duplicate:
                    break
                await asyncio.sleep(DEDUP_WHILE_RESTORING_S * 1.5)
                ack = await publish_when_served(js, msg.subject, msg.data, msg.headers)
            if ack.seq != msg.seq:
                raise RuntimeError(f"{name}: message {msg.seq} restored at {ack.seq}")
            restored += 1
            if msg.headers and (msg_id := msg.headers.get("Nats-Msg-Id")):
                ids.add(msg_id)
        else:
            await fill_to(msg.seq + 1)
        expected = msg.seq + 1
        if progress and restored % 500 == 0:
            progress(restored, summary["messages"])
    await fill_to(summary["last_seq"] + 1)
    original = StreamConfig.from_response(dict(summary["config"]))
    original.num_replicas = replicas
    original.first_seq = summary["first_seq"] if summary["first_seq"] > 1 else None
    await js.update_stream(original)
    if progress:
        progress(restored, summary["messages"])
    return restored, ids
