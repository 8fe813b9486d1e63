"""A hung async test fails within its pytest-timeout limit and the run goes on (the plugin's hang guard)."""

from __future__ import annotations

import re

import pytest
from devtools.testing.hang_guard import margin

pytest_plugins = ["pytester"]

# pytest-timeout's SIGALRM must hit the inner runs, never this one: they run as subprocesses,
# each bounded (a hang fails this test instead of holding the run)
INNER_LIMIT = 60

HUNG = '''
import asyncio
import time

import pytest


@pytest.mark.timeout(1)
async def test_waits_while_another_task_works():
    """The alarm lands in the busy task's step: asyncio keeps the failure as that task's result."""
    async def busy():
        while True:
            time.sleep(0.01)
            await asyncio.sleep(0)
    worker = asyncio.create_task(busy())
    await asyncio.Event().wait()


@pytest.mark.timeout(1)
async def test_waits_while_callbacks_run():
    """The alarm lands in a loop callback: asyncio logs it ("Exception in callback") and goes on."""
    loop = asyncio.get_running_loop()
    def tick():
        time.sleep(0.01)
        loop.call_soon(tick)
    loop.call_soon(tick)
    await asyncio.Event().wait()


@pytest.mark.timeout(1)
async def test_loop_blocked_by_another_task():
    """Sync code blocks the loop past the limit: the alarm frees it, then the guard fails the test."""
    async def block():
        time.sleep(2)
    blocker = asyncio.create_task(block())
    await asyncio.Event().wait()


@pytest.mark.timeout(5)
async def test_own_timeout_error_is_left_alone():
    await asyncio.wait_for(asyncio.Event().wait(), 0.05)


async def test_quick():
    await asyncio.sleep(0)


def test_after():
    pass
'''


@pytest.fixture(autouse=True)
def ini(pytester: pytest.Pytester) -> None:
    """The inner runs' settings, as the project's (auto mode, one loop per session)."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
                     "asyncio_default_test_loop_scope = session\n")


def test_margin_leaves_pytest_timeout_time_for_teardown() -> None:
    assert margin(120) == 10
    assert margin(30) == 3
    assert margin(2) == 0.5
    assert margin(0.5) == 0.25


def test_hung_async_tests_fail_within_their_limit_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hung=HUNG)
    # in an xdist worker, as under `make test`
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--durations=0", "-n", "1",
                                           timeout=INNER_LIMIT)
    result.assert_outcomes(failed=4, passed=2)
    out = result.stdout.str()
    for name in ("waits_while_another_task_works", "waits_while_callbacks_run",
                 "loop_blocked_by_another_task"):
        assert re.search(rf"test_{name} still running 0\.5 s after its timeout started: cancelled "
                         r"by the async hang guard, 0\.5 s before pytest-timeout's 1 s limit", out)
        # it failed soon after the guard's deadline (or the alarm that freed a blocked loop)
        seconds = float(re.search(rf"([\d.]+)s call +test_hung.py::test_{name}", out).group(1))
        assert seconds < 2.5, out
    # what the test may have waited for: the loop's other tasks, by name and coroutine
    assert re.search(r"other tasks still running:\n.*Task-\d+: test_waits_while_another_task_works"
                     r"\.<locals>\.busy", out), out
    result.stdout.fnmatch_lines(["FAILED test_hung.py::test_own_timeout_error_is_left_alone - TimeoutError"])
    assert "SystemError" not in out + result.stderr.str()


def test_without_the_guard_the_limit_does_not_stop_an_async_test(pytester: pytest.Pytester) -> None:
    """The mechanism the guard answers: pytest-timeout's failure is swallowed by another task."""
    pytester.makepyfile(test_swallowed='''
import asyncio
import time

import pytest


@pytest.mark.timeout(1)
async def test_outlives_its_limit():
    async def busy():
        while True:
            time.sleep(0.01)
            await asyncio.sleep(0)
    worker = asyncio.create_task(busy())
    await asyncio.sleep(2.5)  # bounded here; an unbounded wait hangs the run for good
    assert worker.done()
    assert "Timeout (>1.0s) from pytest-timeout" in str(worker.exception())
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "-p", "no:devtools.testing.hang_guard", timeout=INNER_LIMIT)
    result.assert_outcomes(passed=1)
