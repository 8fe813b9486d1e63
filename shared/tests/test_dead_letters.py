"""Dead letters: listed with their error and origin, replayed to their original subject, deleted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence

import pytest
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from shared.consumer import ConsumerSpec, JetStreamConsumer, Poison
from shared.dead_letters import REPLAYED_FROM, dead_letters, replay
from shared.runtime import cancel_tasks
from shared.streams import DEAD_LETTERS, StreamSpec, ensure_streams

pytestmark = pytest.mark.servers


async def test_a_fixed_consumer_gets_its_dead_letter_again(nats: NatsClient, nats_url: str) -> None:
    js = nats.jetstream()
    name = f"T{uuid.uuid4().hex[:8]}".upper()
    subject = f"{name.lower()}.a"
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"]), DEAD_LETTERS])
    fixed = {"yet": False}
    handled: list[int] = []

    async def handler(msgs: Sequence[Msg]) -> None:
        values = []  # all or nothing, like a batch in one transaction
        for msg in msgs:
            body = json.loads(msg.data)
            if body.get("needs_fix") and not fixed["yet"]:
                raise Poison("not handled yet")
            values.append(body["n"])
        handled.extend(values)

    spec = ConsumerSpec(name, f"durable-{name.lower()}", [f"{name.lower()}.>"], backoff_s=[0.05])
    task = asyncio.create_task(JetStreamConsumer(js, spec, handler, fetch_timeout_s=0.2).run())
    try:
        await js.publish(subject, json.dumps({"n": 1}).encode())
        await js.publish(subject, json.dumps({"n": 2, "needs_fix": True}).encode())
        await wait_for(lambda: handled == [1], timeout=10)
        letters = await wait_for(lambda: dead_letters(js, spec.durable), timeout=10)
        [letter] = letters
        assert (letter.original_subject, letter.original_stream, letter.original_seq) == (subject, name, "2")
        assert "not handled yet" in letter.error and letter.consumer == spec.durable

        env = os.environ | {"PATCHBAY_NATS_URL": nats_url}
        command = [sys.executable, "-m", "shared.dead_letters", "list", "--consumer", spec.durable]
        listed = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, env=env,
                                         timeout=60, check=True)
        assert "1 dead letter(s)" in listed.stdout and subject in listed.stdout

        fixed["yet"] = True  # the cause is fixed (a deploy), then the replay
        assert await replay(js, letters) == 1
        await wait_for(lambda: handled == [1, 2], timeout=10, message="the replayed message handled")
        assert await dead_letters(js, spec.durable) == []
        again = await js.get_msg(name, 3)
        assert again.headers is not None and again.headers[REPLAYED_FROM] == str(letter.seq)
    finally:
        await cancel_tasks([task])
