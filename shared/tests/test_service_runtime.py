"""The one start-up every service runs: migrate, pool, connect as itself; and its fixed stop order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from devtools.testing.plugin import MakeDatabase
from devtools.testing.waiting import wait_for
from nats.errors import TimeoutError as NatsTimeoutError
from shared.service_runtime import Plumbing, ServiceRuntime
from shared.settings import CommonSettings
from shared.streams import ALL_STREAMS

pytestmark = pytest.mark.servers


def plumbing(tmp_path: Path, **options: object) -> Plumbing:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);\n")
    # the name is the NATS identity it connects as (shared.bus_identities)
    return Plumbing(name="customer", schema="probe", migrations=tmp_path, nats_name="patchbay-probe",
                    **options)  # type: ignore[arg-type]


async def test_open_migrates_and_connects_as_the_services_identity(
    make_database: MakeDatabase, nats_url: str, tmp_path: Path,
) -> None:
    settings = CommonSettings(database_url=await make_database(), nats_url=nats_url)
    runtime = await ServiceRuntime.open(plumbing(tmp_path), settings, pool_max=3)
    try:
        # the pool sees the service's schema first, where its migration made its table
        assert await runtime.pool.fetchval("SELECT current_schema()") == "probe"
        assert await runtime.pool.fetchval("SELECT count(*) FROM things") == 0
        assert await runtime.pool.fetchval("SELECT max(number) FROM schema_migrations") == 1
        assert runtime.pool.get_max_size() == 3
        assert runtime.nc.is_connected
        assert runtime.nc.new_inbox().startswith("_INBOX_customer.")
        # the streams are there (the provisioner made them), and are not the service's to change
        errors: list[str] = []
        runtime.nc._error_cb = lambda exc: errors.append(str(exc)) or asyncio.sleep(0)  # type: ignore[assignment]
        with pytest.raises((NatsTimeoutError, TimeoutError)):
            await runtime.nc.jetstream(timeout=0.5).stream_info(ALL_STREAMS[0].name)
        await wait_for(lambda: any("permissions violation" in e for e in errors), timeout=5)
    finally:
        await runtime.stop()
    assert runtime.nc.is_closed and runtime.pool.is_closing()


async def test_stop_runs_intake_then_tasks_then_clean_ups_then_nats_then_pool(
    make_database: MakeDatabase, nats_url: str, tmp_path: Path,
) -> None:
    settings = CommonSettings(database_url=await make_database(), nats_url=nats_url)
    for drain in (True, False):
        runtime = await ServiceRuntime.open(plumbing(tmp_path, drain_on_stop=drain),
                                            settings, pool_max=2)
        seen: list[str] = []
        started = asyncio.Event()

        async def worker(seen: list[str] = seen, started: asyncio.Event = started) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            finally:
                seen.append("task stopped")

        async def intake(seen: list[str] = seen, runtime: ServiceRuntime = runtime) -> None:
            assert runtime.tasks and not runtime.tasks[0].done()
            seen.append("intake")

        async def clean_up(seen: list[str] = seen, runtime: ServiceRuntime = runtime) -> None:
            # the connections are still open for the clean-ups (a lease to release, claims to settle)
            assert runtime.nc.is_connected and not runtime.pool.is_closing()
            await runtime.pool.fetchval("SELECT 1")
            seen.append("clean-up")

        runtime.spawn(worker(), name="worker")
        runtime.stop_first(intake)
        runtime.after_tasks(clean_up)
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(runtime.stop(), 15)
        assert seen == ["intake", "task stopped", "clean-up"], drain
        assert runtime.tasks[0].cancelled()
        assert runtime.nc.is_closed and runtime.pool.is_closing()
