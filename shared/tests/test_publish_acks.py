"""The relays' batch publisher against a real nats-server: acks, dedup, errors, deadlines, headers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from devtools.testing.jetstream import stored_messages
from nats.aio.client import Client as NatsClient
from nats.errors import BadSubjectError, MaxPayloadError
from nats.js.errors import APIError, NoStreamResponseError
from shared.envelope import EventEnvelope, Metadata
from shared.outbox_relay import event_header_block, nats_headers
from shared.publish_acks import BatchPublisher, header_block
from shared.streams import StreamSpec, ensure_streams


async def stream(nats: NatsClient) -> str:
    name = f"P{uuid.uuid4().hex[:8]}".upper()
    await ensure_streams(nats.jetstream(), [StreamSpec(name, [f"{name.lower()}.>"])])
    return name


async def stored(nats: NatsClient, name: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(subject, payload, headers) of every message of the stream, in stream order."""
    msgs = await stored_messages(nats.jetstream(), f"{name.lower()}.>", name)
    return [(m.subject, m.data, dict(m.headers or {})) for m in msgs]


def batch(name: str, first: int, count: int) -> list[tuple[str, bytes, bytes]]:
    return [(f"{name.lower()}.n.{i}", header_block({"Nats-Msg-Id": f"{name}-{i}", "X-N": str(i)}),
             f'{{"n":{i}}}'.encode()) for i in range(first, first + count)]


async def test_a_batch_is_stored_in_order_once_and_a_resend_is_deduplicated(nats: NatsClient) -> None:
    name = await stream(nats)
    publisher = BatchPublisher(nats.jetstream())
    await publisher.publish(batch(name, 0, 300))
    await publisher.publish(batch(name, 250, 100))  # a relay crashed after publishing 250-299: sent again
    got = await stored(nats, name)
    assert [s for s, _, _ in got] == [f"{name.lower()}.n.{i}" for i in range(350)]
    assert got[7][1] == b'{"n":7}'
    assert got[7][2] == {"Nats-Msg-Id": f"{name}-7", "X-N": "7"}
    info = await nats.jetstream().stream_info(name)
    assert info.state.messages == 350


async def test_headers_are_written_as_nats_py_writes_them(nats: NatsClient) -> None:
    name = await stream(nats)
    headers = {"Nats-Msg-Id": "a", "X-Correlation-Id": " two\r\nlines ", "Patchbay-Event-Type": "CustomerCreated"}
    await BatchPublisher(nats).publish([(f"{name.lower()}.mine", header_block(headers), b"x")])
    await nats.jetstream().publish(f"{name.lower()}.theirs", b"x", headers={**headers, "Nats-Msg-Id": "b"})
    (_, _, mine), (_, _, theirs) = await stored(nats, name)
    assert mine == {**theirs, "Nats-Msg-Id": "a"}
    assert mine["X-Correlation-Id"] == "two  lines"  # a value never opens a header line of its own


async def test_a_subject_no_stream_takes_is_refused(nats: NatsClient) -> None:
    with pytest.raises(NoStreamResponseError):
        await BatchPublisher(nats).publish(batch("nowhere" + uuid.uuid4().hex[:6], 0, 3))


async def test_an_error_ack_fails_the_batch(nats: NatsClient) -> None:
    name = await stream(nats)
    wrong = header_block({"Nats-Msg-Id": "w", "Nats-Expected-Stream": "NOT_THIS_ONE"})
    with pytest.raises(APIError):
        await BatchPublisher(nats).publish([*batch(name, 0, 2), (f"{name.lower()}.w", wrong, b"{}"), *batch(name, 2, 2)])


async def test_missing_acks_raise_at_the_deadline_and_the_next_batch_goes_on(nats: NatsClient) -> None:
    name = await stream(nats)
    silent = f"silent.{uuid.uuid4().hex[:8]}"
    sub = await nats.subscribe(silent)  # a core subscriber that never answers: no ack, no "no responders"
    publisher = BatchPublisher(nats, timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            await publisher.publish([*batch(name, 0, 2), (silent, header_block({"Nats-Msg-Id": "s"}), b"{}")])
        await publisher.publish(batch(name, 2, 3))
        assert len(await stored(nats, name)) == 5
    finally:
        await sub.unsubscribe()


async def test_bad_subjects_and_oversized_payloads_are_refused_before_anything_is_sent(nats: NatsClient) -> None:
    name = await stream(nats)
    publisher = BatchPublisher(nats)
    with pytest.raises(BadSubjectError):
        await publisher.publish([*batch(name, 0, 1), (f"{name.lower()}.a b", header_block({}), b"{}")])
    with pytest.raises(MaxPayloadError):
        await publisher.publish([(f"{name.lower()}.big", header_block({}), b"x" * (nats.max_payload + 1))])
    await asyncio.sleep(0)
    assert await stored(nats, name) == []


@pytest.mark.parametrize("correlation", [None, "", "c-1", " padded ", "two\r\nlines"])
def test_the_relays_event_headers_are_its_nats_headers_block(correlation: str | None) -> None:
    event = EventEnvelope(type="CustomerCreated", category="customer", stream_id=str(uuid.uuid4()), version=1,
                          data={}, metadata=Metadata(correlation_id=correlation))
    assert event_header_block(event) == header_block(nats_headers(event))
