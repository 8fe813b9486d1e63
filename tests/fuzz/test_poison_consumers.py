"""A poison message on every durable consumer of the running stack: dead-lettered, and the consumer goes on."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerInfo
from shared.partitions import published_subject
from shared.settings import nats_servers
from shared.streams import ALL_STREAMS, DEAD_LETTERS, OPS_EVENTS

from shared import bus

from .conftest import FuzzStack

pytestmark = [pytest.mark.servers, pytest.mark.fuzz]

POISON = b'{"this is": not json'


@pytest.fixture(scope="module")
async def client(fuzz_stack: FuzzStack) -> Any:
    nc: NatsClient = await bus.connect(nats_servers(fuzz_stack.nats_url), "provisioner",
                                          seed=fuzz_stack.seed("provisioner"),
                                          service_keys=fuzz_stack.service_keys())
    yield nc
    await nc.close()


def concrete(pattern: str, token: str) -> str:
    """A subject that matches the pattern: each wildcard replaced by a token."""
    return ".".join(token if part in ("*", ">") else part for part in pattern.split("."))


def meet(a: str, b: str, token: str) -> str | None:
    """A subject matching both patterns (literal tokens win over wildcards), if there is one."""
    x, y = a.split("."), b.split(".")
    out: list[str] = []
    for i in range(max(len(x), len(y))):
        p = x[i] if i < len(x) else None
        q = y[i] if i < len(y) else None
        if p == ">" or q == ">":
            rest = y[i:] if p == ">" else x[i:]
            return ".".join(out + [token if t in ("*", ">") else t for t in rest] or [token])
        if p is None or q is None:
            return None
        if p != "*" and q != "*" and p != q:
            return None
        out.append(p if p != "*" else q if q != "*" else token)
    return ".".join(out)


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching (`*` one token, `>` the rest)."""
    want, have = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)


def filters_of(info: ConsumerInfo) -> list[str]:
    config = info.config
    return config.filter_subjects or ([config.filter_subject] if config.filter_subject else [">"])


def poison_subject(info: ConsumerInfo) -> str:
    """A subject of the consumer's stream that its filter takes (or, where the stream only takes
    the plain form of a partitioned subject, that plain form: it lands in some partition)."""
    filters = filters_of(info)
    [stream] = [s for s in ALL_STREAMS if s.name == info.stream_name]
    token = str(uuid.uuid4())
    candidates = [concrete(p, token) for p in [*filters, *stream.subjects]]
    candidates += [m for f in filters for p in stream.subjects if (m := meet(f, p, token))]
    for subject in candidates:
        if any(matches(f, subject) for f in filters) and any(matches(p, subject) for p in stream.subjects):
            return subject
    # a partition's filter names the stored shape: publish its plain form (the partition token
    # taken out where the stream's layout puts it), which lands in the partition of its key token
    plain = [published_subject(f, stream.partition_key) for f in filters]
    for subject in [m for f in plain for p in stream.subjects if (m := meet(f, p, token))]:
        if stream.partition_key and any(matches(p, subject) for p in stream.subjects):
            return subject
    raise AssertionError(f"no subject of {stream.name} passes {info.config.durable_name}'s filter {filters}")


async def durable_consumers(nc: NatsClient) -> list[ConsumerInfo]:
    """Every durable consumer the services declared (on every stream but the dead letters)."""
    js = nc.jetstream()
    found = []
    for spec in ALL_STREAMS:
        if spec.name == DEAD_LETTERS.name:
            continue
        found += [c for c in await js.consumers_info(spec.name) if c.config.durable_name]
    return found


def dead_letter_subject(durable: str) -> str:
    """The partitions of a consumer (`<durable>-p<k>`) park their messages on the base durable's subject."""
    return "dlq." + re.sub(r"-p\d+$", "", durable)


async def announced_on(nc: NatsClient, dead_letter_subject: str) -> int:
    """Error events (`MessageDeadLettered` on OPS_EVENTS) for the dead letters of one subject."""
    consumer = dead_letter_subject.removeprefix("dlq.")
    info = await nc.jetstream().stream_info(
        OPS_EVENTS.name, subjects_filter=f"events.ops.{consumer}.MessageDeadLettered")
    return sum((info.state.subjects or {}).values())


async def dead_letters_on(nc: NatsClient, subject: str) -> int:
    info = await nc.jetstream().stream_info(DEAD_LETTERS.name, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


async def test_every_consumer_dead_letters_poison_and_goes_on(client: NatsClient, fuzz_stack: FuzzStack) -> None:
    js = client.jetstream()
    async def declared() -> list[ConsumerInfo]:
        # the stack is up once the gateway answers: the other services may still be declaring theirs
        found = await durable_consumers(client)
        names = {c.config.durable_name or "" for c in found}
        return found if any("reporting" in d for d in names) and len(names) >= 4 else []

    consumers = await wait_for(declared, timeout=60, interval=0.2, message="the services' durable consumers")
    durables = {c.config.durable_name for c in consumers}
    print("poisoning", sorted(d for d in durables if d))
    # poison until each durable got one (each partition of a consumer is a durable of its own;
    # a plain subject lands in the partition of its customer token), counting where each went
    subjects = {dead_letter_subject(d) for d in durables if d}
    before = {s: await dead_letters_on(client, s) for s in subjects}
    announced_before = {s: await announced_on(client, s) for s in subjects}
    expected: Counter[str] = Counter()
    unhit = {c.config.durable_name for c in consumers}
    for info in consumers:
        for _ in range(200):
            if info.config.durable_name not in unhit:
                break
            subject = poison_subject(info)
            ack = await js.publish(subject, POISON, headers={"Nats-Msg-Id": f"poison-{uuid.uuid4()}"})
            # stored as published when the filter takes it (a work queue may have consumed it already)
            direct = any(matches(f, subject) for f in filters_of(info))
            stored = subject if direct else (await js.get_msg(ack.stream, ack.seq)).subject or ""
            for other in consumers:
                if other.stream_name == ack.stream and any(matches(f, stored) for f in filters_of(other)):
                    expected[dead_letter_subject(other.config.durable_name or "")] += 1
                    unhit.discard(other.config.durable_name)
    assert not unhit, f"no poison reached {sorted(d for d in unhit if d)}"

    for subject, count in sorted(expected.items()):
        async def parked(subject: str = subject, count: int = count) -> bool:
            return await dead_letters_on(client, subject) >= before[subject] + count

        async def announced(subject: str = subject, count: int = count) -> bool:
            return await announced_on(client, subject) >= announced_before[subject] + count

        await wait_for(parked, timeout=30, interval=0.2, message=f"{count} poison messages on {subject}")
        # each dead letter is announced by an error event on OPS_EVENTS (published just after it)
        await wait_for(announced, timeout=10, interval=0.1, message=f"{count} error events for {subject}")

    # and the consumers go on: a customer created now reaches the audit log (reporting's consumer)
    name = f"after-poison-{uuid.uuid4().hex[:8]}"
    # with a reason: the HTTP fuzzing before this test may have switched "reason required" on
    card = orjson.loads((await client.request("customer.cmd.create", orjson.dumps(
        {"meta": {"reason": "poison test"}, "customer": {"name": name}}), timeout=10)).data)
    assert "error" not in card, card

    async def audited() -> bool:
        reply = await client.request("reporting.query.audit", orjson.dumps({"customer_id": card["id"]}),
                                     timeout=10)
        return bool(orjson.loads(reply.data).get("items"))

    await wait_for(audited, timeout=30, interval=0.2, message="the new customer in the audit log")
    assert fuzz_stack.alive(), fuzz_stack.errors()
