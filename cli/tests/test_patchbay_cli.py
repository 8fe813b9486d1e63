"""`patchbay`: one entry point that finds the running stack, and says what it tried when it cannot."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from devtools.embedded import free_port
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig
from shared.stack_file import locate, write_stack_file
from shared.streams import CALLS, DEAD_LETTERS, StreamSpec, ensure_streams

PATCHBAY = Path(sys.executable).parent / "patchbay"


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # no stack settings leak in; the session's NATS credentials do (its servers authenticate)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("PATCHBAY_") or k == "PATCHBAY_NATS_CREDENTIALS_DIR"}
    return subprocess.run([str(PATCHBAY), *args], capture_output=True, text=True, timeout=120,
                          env=clean | (env or {}), cwd=cwd, check=False)


def test_flags_then_environment_then_the_stack_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PATCHBAY_NATS_URL", "PATCHBAY_DATABASE_URL", "PATCHBAY_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert locate(tmp_path).nats_from.startswith("the default")
    write_stack_file(tmp_path, {"nats_url": "nats://127.0.0.1:4333", "database_url": "postgresql://x@h:1/p"})
    found = locate(tmp_path)
    assert (found.nats_url, found.database_url) == ("nats://127.0.0.1:4333", "postgresql://x@h:1/p")
    assert "stack.json" in found.nats_from
    monkeypatch.setenv("PATCHBAY_NATS_URL", "nats://env:1")
    assert locate(tmp_path).nats_url == "nats://env:1"
    assert locate(tmp_path, nats_url="nats://flag:2").nats_url == "nats://flag:2"
    info = json.loads((tmp_path / "run" / "stack.json").read_text())
    info["pid"] = 2**22 + 12345  # a runner that died: its file is ignored
    (tmp_path / "run" / "stack.json").write_text(json.dumps(info))
    monkeypatch.delenv("PATCHBAY_NATS_URL")
    assert locate(tmp_path).nats_from.startswith("the default")


def test_where_reads_the_data_dir_of_a_running_stack(tmp_path: Path) -> None:
    write_stack_file(tmp_path, {"nats_url": "nats://127.0.0.1:4999", "database_url": "postgresql://p@127.0.0.1:1/x"})
    info = json.loads((tmp_path / "run" / "stack.json").read_text())
    info["pid"] = os.getpid()  # alive: this test
    (tmp_path / "run" / "stack.json").write_text(json.dumps(info))
    shown = _run("--data-dir", str(tmp_path), "where")
    assert shown.returncode == 0, shown.stderr
    assert "nats://127.0.0.1:4999" in shown.stdout and "stack.json" in shown.stdout


@pytest.mark.parametrize("command", [["dead-letters", "list"], ["rebuild", "all", "--no-progress"],
                                     ["rebuild", "ledger", "--no-progress"],
                                     ["simulate", "--customers", "c1", "--seconds", "1"]])
def test_an_unreachable_stack_is_named_not_a_traceback(tmp_path: Path, command: list[str]) -> None:
    nats_url, db_url = f"nats://127.0.0.1:{free_port()}", f"postgresql://postgres@127.0.0.1:{free_port()}/patchbay"
    done = _run("--data-dir", str(tmp_path), *command,
                env={"PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": db_url})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot reach" in done.stderr and ("PATCHBAY_NATS_URL" in done.stderr or "PATCHBAY_DATABASE_URL" in done.stderr)
    assert nats_url in done.stderr or db_url in done.stderr


@pytest.mark.servers
async def test_dead_letters_are_found_by_the_names_list_shows(nats: NatsClient, nats_url: str) -> None:
    js = nats.jetstream()
    name = f"T{uuid.uuid4().hex[:8]}".upper()
    base = f"test-{name.lower()}"
    await ensure_streams(js, [StreamSpec(name, [f"{name.lower()}.>"]), DEAD_LETTERS])
    await js.add_consumer(name, ConsumerConfig(durable_name=f"{base}-p3"))
    await js.publish(f"dlq.{base}", b"{}", headers={  # as a partition's durable parks it (shared.consumer)
        "Patchbay-Consumer": f"{base}-p3", "Patchbay-Original-Subject": f"{name.lower()}.x",
        "Patchbay-Original-Stream": name, "Patchbay-Original-Sequence": "1", "Patchbay-Error": "boom"})

    def listed(consumer: str) -> subprocess.CompletedProcess[str]:
        return _run("--nats-url", nats_url, "dead-letters", "list", "--consumer", consumer)

    by_partition, by_consumer = await asyncio.gather(asyncio.to_thread(listed, f"{base}-p3"),
                                                     asyncio.to_thread(listed, base))
    for done in (by_partition, by_consumer):
        assert done.returncode == 0 and "1 dead letter(s)" in done.stdout, done.stdout + done.stderr
        assert f"{base} " in done.stdout and f"(durable {base}-p3)" in done.stdout
    unknown = await asyncio.to_thread(listed, f"{base}-nope")
    assert unknown.returncode == 2 and base in unknown.stderr, unknown.stderr


@pytest.mark.servers
async def test_the_simulator_takes_a_cluster_url_list(nats: NatsClient, nats_url: str) -> None:
    js = nats.jetstream()
    await ensure_streams(js, [CALLS])
    before = (await js.stream_info(CALLS.name)).state.messages
    customer = f"sim-{uuid.uuid4().hex[:8]}"
    done = await asyncio.to_thread(_run, "--nats-url", f"{nats_url},{nats_url}", "simulate",
                                   "--customers", customer, "--backlog", "5", "--seed", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published 5 call records" in done.stdout
    assert (await js.stream_info(CALLS.name)).state.messages == before + 5  # a backlog: records only
