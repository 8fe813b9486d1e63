"""`patchbay backup` of a running stack under load, the stack destroyed, `patchbay restore` onto a fresh one.

Everything acknowledged before the backup began comes back: each customer (its command's event in
PostgreSQL and once in CUSTOMER_EVENTS), its audit rows, the call summaries, the sealed SMTP
password (openable: the key came back too); and the rebuild after the restore switches over.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from devtools.embedded import free_port
from devtools.testing.waiting import wait_for
from shared.stack_file import read_stack_file

from shared import bus

pytestmark = [pytest.mark.servers, pytest.mark.faults, pytest.mark.timeout(600)]

PATCHBAY = Path(sys.executable).parent / "patchbay"


class Stack:
    """`python -m devtools.stack run|servers` on a data dir, its output collected."""

    def __init__(self, data_dir: Path, command: str, http_port: int, **extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
        env |= {"PATCHBAY_DATA_DIR": str(data_dir), "PATCHBAY_HTTP_PORT": str(http_port),
                "PATCHBAY_LOG_LEVEL": "INFO", "PATCHBAY_READY_TIMEOUT_S": "240"} | extra
        self.data_dir, self.http = data_dir, f"http://127.0.0.1:{http_port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "devtools.stack", command], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        marker = "admin token:" if command == "run" else "PATCHBAY_DATABASE_URL="
        deadline = time.monotonic() + 300
        while not any(marker in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.lines[-60:])
            time.sleep(0.1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def token(self) -> str:
        return (self.data_dir / "admin_token").read_text().strip()


@contextmanager
def stack(data_dir: Path, command: str = "run", **extra: str) -> Iterator[Stack]:
    running = Stack(data_dir, command, free_port(), **extra)
    try:
        yield running
    finally:
        running.stop()


def patchbay(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBAY_")}
    done = subprocess.run([str(PATCHBAY), "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, f"patchbay {args}: {done.stdout}\n{done.stderr}"
    return done


class Load:
    """Clients creating customers through the gateway until stopped; what was acknowledged, when."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.acked: list[tuple[float, str]] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(4)]

    async def _client(self, i: int) -> None:
        while not self._stop.is_set():
            key = str(uuid.uuid4())
            try:
                reply = await self.http.post("/v1/customers", json={"name": f"Load {i} {key[:8]}"},
                                             headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                continue
            if reply.status_code == 201:
                self.acked.append((time.monotonic(), reply.json()["id"]))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _snapshot(http: httpx.AsyncClient, customers: list[str], called: list[str]) -> dict[str, object]:
    audit = {c: (await http.get(f"/v1/customers/{c}/audit", params={"limit": 1})).json()["total"]
             for c in customers}
    summaries = {c: (await http.get(f"/v1/customers/{c}/summary")).json()["totals"] for c in called}
    return {"audit": audit, "summaries": summaries}


async def _settled(http: httpx.AsyncClient, customers: list[str], called: list[str]) -> dict[str, object]:
    """The projections' view once it stops changing (each customer in the audit log, the same twice)."""
    last: dict[str, object] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = await _snapshot(http, customers, called)
        if now == last and all(n > 0 for n in now["audit"].values()):  # type: ignore[attr-defined]
            return now
        last = now
        await asyncio.sleep(1.5)
    raise AssertionError(f"the projections did not settle: {last}")


async def test_backup_under_load_restore_onto_a_fresh_stack(embedded_tmp_path: Path) -> None:
    first, backup_dir, second = (embedded_tmp_path / n for n in ("first", "backup", "second"))
    with stack(first) as running:
        headers = {"Authorization": f"Bearer {running.token()}"}
        async with httpx.AsyncClient(base_url=running.http, headers=headers, timeout=30) as http:
            put = await http.put("/v1/settings/email", json={
                "from_address": "ops@example.com", "smtp_host": "smtp.example.com", "smtp_port": 2525,
                "smtp_username": "ops", "smtp_password": "s3cret-pw"})
            assert put.status_code == 200, put.text
            called = []
            for i in range(3):
                reply = await http.post("/v1/customers", json={"name": f"Caller {i}"})
                called.append(reply.json()["id"])
            await asyncio.to_thread(patchbay, first, "simulate", "--customers", ",".join(called),
                                    "--backlog", "300", "--days", "1", "--seed", "5")
            load = Load(http)
            await wait_for(lambda: len(load.acked) >= 40, timeout=60)

            began = time.monotonic()
            backup = await asyncio.to_thread(patchbay, first, "backup", str(backup_dir), "--no-progress")
            ended = time.monotonic()
            await asyncio.sleep(1)
            await load.stop()
            before = [c for t, c in load.acked if t < began]
            during = [c for t, c in load.acked if began <= t <= ended]
            assert len(before) >= 40
            live = await _settled(http, before + called, called)
    print(backup.stdout, backup.stderr)
    assert (backup_dir / "postgres.dump").stat().st_size > 0
    assert {"secret_key", "admin_token"} <= {p.name for p in backup_dir.iterdir()}
    shutil.rmtree(first)  # the stack is gone, servers, store and keys with it

    with stack(second, "servers"):
        restored = await asyncio.to_thread(patchbay, second, "restore", str(backup_dir), "--no-progress")
    print(restored.stdout, restored.stderr)
    with stack(second) as running:
        assert running.token() == (backup_dir / "admin_token").read_text().strip()
        headers = {"Authorization": f"Bearer {running.token()}"}
        async with httpx.AsyncClient(base_url=running.http, headers=headers, timeout=30) as http:
            settings = (await http.get("/v1/settings/email")).json()
            assert settings["smtp_password_set"] and settings["smtp_host"] == "smtp.example.com"
            for customer in before + called:
                assert (await http.get(f"/v1/customers/{customer}")).status_code == 200, customer
            rebuilt = await asyncio.to_thread(patchbay, second, "rebuild", "all", "--no-progress")
            assert "switched over" in rebuilt.stdout, rebuilt.stdout
            after = await _settled(http, before + called, called)
            assert after == live
        info = read_stack_file(second)
        assert info is not None
        await _assert_events_once(info["database_url"], info["nats_url"], before, second)
        assert not [line for line in running.lines if "another key" in line], "the notifier cannot open a sealed value"
    print(f"acknowledged before the backup: {len(before)}, during it: {len(during)}")


async def _connect(nats_url: str, data_dir: Path) -> Any:
    """NATS as the provisioner of the stack on data_dir (its seed in the data dir's credentials)."""
    # the stack's own seeds (not the test session's, which PATCHBAY_NATS_CREDENTIALS_DIR names)
    settings = bus.BusSettings(data_dir=data_dir, nats_credentials_dir=data_dir / "credentials")
    seed = bus.seed_for("provisioner", settings)
    return await bus.connect(nats_url.split(","), "provisioner", seed=seed)


async def _assert_events_once(database_url: str, nats_url: str, customers: list[str], data_dir: Path) -> None:
    """Each customer's creation event: once in PostgreSQL and, once the relay caught up, once in the stream."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT event_id::text AS id, stream_id FROM customer.events WHERE stream_id = ANY($1)"
                                " AND version = 1", customers)
        await wait_for(lambda: conn.fetchval("SELECT count(*) = 0 FROM customer.outbox"), timeout=60)
    finally:
        await conn.close()
    assert {r["stream_id"] for r in rows} == set(customers)
    wanted = {r["id"] for r in rows}
    nc = await _connect(nats_url, data_dir)
    try:
        js = nc.jetstream()
        seen: dict[str, int] = {}
        sub = await js.pull_subscribe(">", stream="CUSTOMER_EVENTS")
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=2)
            except TimeoutError:
                break
            for msg in msgs:
                msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                if msg_id in wanted:
                    seen[msg_id] = seen.get(msg_id, 0) + 1
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await nc.close()
    assert seen == dict.fromkeys(wanted, 1)


async def test_moving_a_data_dir_into_a_cluster(embedded_tmp_path: Path) -> None:
    """docs/operations.md "Moving into a NATS cluster": backup, cluster servers, --streams-only, run."""
    data, backup_dir = embedded_tmp_path / "data", embedded_tmp_path / "backup"
    with stack(data) as running:
        headers = {"Authorization": f"Bearer {running.token()}"}
        async with httpx.AsyncClient(base_url=running.http, headers=headers, timeout=30) as http:
            customers = [(await http.post("/v1/customers", json={"name": f"Mover {i}"})).json()["id"]
                         for i in range(5)]
            await asyncio.to_thread(patchbay, data, "simulate", "--customers", ",".join(customers[:2]),
                                    "--backlog", "100", "--days", "1", "--seed", "9")
            live = await _settled(http, customers, customers[:2])
    with stack(data, "servers"):  # nothing writes: the backup is exactly the streams as they were
        await asyncio.to_thread(patchbay, data, "backup", str(backup_dir), "--no-progress")
    with stack(data, "servers", PATCHBAY_NATS_CLUSTER="3"):
        moved = await asyncio.to_thread(patchbay, data, "restore", str(backup_dir), "--streams-only",
                                        "--no-progress")
        assert "events to republish: none" in moved.stdout, moved.stdout
    with stack(data, PATCHBAY_NATS_CLUSTER="3") as running:
        info = read_stack_file(data)
        assert info is not None and len(info["nats_url"].split(",")) == 3
        nc = await _connect(info["nats_url"], data)
        try:
            js = nc.jetstream()
            for name in ("CUSTOMER_EVENTS", "CALLS"):
                stream = await js.stream_info(name)
                assert stream.config.num_replicas == 3 and stream.state.messages > 0, stream
        finally:
            await nc.close()
        headers = {"Authorization": f"Bearer {running.token()}"}
        async with httpx.AsyncClient(base_url=running.http, headers=headers, timeout=30) as http:
            rebuilt = await asyncio.to_thread(patchbay, data, "rebuild", "all", "--no-progress")
            # audit, summaries and the ledger (ADR 24)
            assert rebuilt.stdout.count("switched over") == 3 and not rebuilt.stderr.count("allow-shrink")
            assert await _settled(http, customers, customers[:2]) == live
            new = (await http.post("/v1/customers", json={"name": "After the move"})).json()["id"]
            await _settled(http, [new], [])
