"""The checks fault tests end with: each acknowledged command's events exist exactly once, and a
projection equals what a rebuild from the streams gives."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import asyncpg
import nats.js.errors
from devtools.testing.waiting import wait_for
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from shared.settings import nats_servers

from shared import bus

from .load import Acked
from .processes import Servers, service_env

T = TypeVar("T")
Snapshot = dict[str, list[tuple[str, ...]]]


async def wait_outbox_drained(database_url: str, schema: str = "customer",
                              timeout: float = 60.0, table: str = "outbox") -> None:
    """Wait until the relay has published every committed event (the outbox table is empty)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while (left := await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")) > 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{left} events still unpublished after {timeout} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def stored_events(database_url: str) -> list[asyncpg.Record]:
    """(event_id, stream_id, version, type, command_id) of every customer event in PostgreSQL."""
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(
            "SELECT event_id::text, stream_id, version, type, metadata->>'command_id' AS command_id"
            " FROM customer.events WHERE category = 'customer' ORDER BY position"))
    finally:
        await conn.close()


async def published_ids(nc: NatsClient, subjects: str = "events.customer.>") -> Counter[str]:
    """How many times each Nats-Msg-Id (event id) is in CUSTOMER_EVENTS."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        subjects, stream="CUSTOMER_EVENTS",
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                              inactive_threshold=30.0))
    seen: Counter[str] = Counter()
    try:
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except TimeoutError:  # nats-py raises its own or asyncio's (the builtin)
                break
            for msg in msgs:
                assert msg.headers is not None
                seen[msg.headers["Nats-Msg-Id"]] += 1
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return seen


async def _retried(read: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Retry a JetStream API read while a cluster elects leaders (its API may time out meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await read()
        except (TimeoutError, NatsError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def assert_exactly_once(database_url: str, nats_url: str, acked: Iterable[Acked]) -> int:
    """Every acknowledged command has its event once in PostgreSQL and once in JetStream.

    Returns how many events were checked. Commands not acknowledged (in flight at a crash)
    may or may not have happened, but never twice.
    """
    await wait_outbox_drained(database_url)
    events = await stored_events(database_url)
    by_command: dict[str, list[asyncpg.Record]] = {}
    for row in events:
        if row["command_id"]:
            # through the gateway the command id is `<token id>:<Idempotency-Key>`: match on the key
            key = row["command_id"].split(":", 1)[-1]
            by_command.setdefault(key, []).append(row)
    twice = {cid: len(rows) for cid, rows in by_command.items() if len(rows) > 1}
    assert not twice, f"commands applied more than once: {list(twice.items())[:5]}"
    for ack in acked:
        rows = by_command.get(ack.command_id)
        assert rows, f"acknowledged {ack.kind} {ack.command_id} has no event in PostgreSQL"
        [row] = rows
        assert (row["stream_id"], row["version"]) == (ack.customer_id, ack.version), (ack, dict(row))
    nc = await bus.connect(nats_servers(nats_url), "provisioner")
    try:
        seen = await _retried(lambda: published_ids(nc))
    finally:
        await nc.close()
    stored = {row["event_id"] for row in events}
    dupes = {k: n for k, n in seen.items() if n > 1}
    assert not dupes, f"events published more than once: {list(dupes.items())[:5]}"
    missing = stored - set(seen)
    assert not missing, f"{len(missing)} stored events never reached JetStream, e.g. {list(missing)[:3]}"
    extra = set(seen) - stored
    assert not extra, f"{len(extra)} JetStream events not in PostgreSQL, e.g. {list(extra)[:3]}"
    return len(events)


async def count(database_url: str, sql: str) -> int:
    """One number from PostgreSQL; 0 while the service has not created its tables yet."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql) or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def snapshot(database_url: str, tables: Iterable[str], *, without: Iterable[str] = ()) -> Snapshot:
    """Every row of reporting's `tables`, as sorted text tuples, leaving out the `without` columns."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "reporting"})
    try:
        out: Snapshot = {}
        for table in tables:
            rows = [dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")]
            for row in rows:
                for column in without:
                    row.pop(column, None)
            out[table] = sorted(tuple(str(v) for v in row.values()) for row in rows)
        return out
    finally:
        await conn.close()


def start_rebuild(servers: Servers, projection: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m reporting rebuild <projection>` as a process of its own."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "reporting", "rebuild", projection, "--no-progress"],
                                env=os.environ | service_env(servers), stdout=out, stderr=subprocess.STDOUT)


def assert_same_rows(rebuilt: Snapshot, live: Snapshot) -> None:
    """The rebuilt projection has exactly the live one's rows."""
    for table in live:
        diff = sorted(set(rebuilt[table]) ^ set(live[table]))
        assert not diff, f"{table}: the rebuilt projection differs from the live one: {diff[:4]}"
        assert len(rebuilt[table]) == len(live[table]), table


async def wait_caught_up(nats_url: str, stream: str, durables: Iterable[str], timeout: float = 60.0) -> None:
    """Wait until each durable consumer has had and acknowledged every message of its stream."""
    nc = await bus.connect(nats_servers(nats_url), "provisioner")
    try:
        js = nc.jetstream()

        async def caught_up() -> bool:
            for durable in durables:
                try:
                    info = await js.consumer_info(stream, durable)
                except nats.js.errors.NotFoundError:
                    return False  # not made yet (a restarted service makes its durables as it starts them)
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await wait_for(caught_up, timeout=timeout, interval=0.1, message=f"the consumers of {stream} to catch up")
    finally:
        await nc.close()
