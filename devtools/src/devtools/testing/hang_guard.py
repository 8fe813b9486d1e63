"""A hung async test fails inside its pytest-timeout limit instead of holding the run (docs/testing.md).

pytest-timeout's signal method raises its failure from the SIGALRM handler in whatever Python
code runs at that moment. In an async test that is often another task's step (asyncio stores
the failure as that task's result) or a loop callback (asyncio logs "Exception in callback"):
the test itself never sees it and waits forever. So each async test's coroutine runs under
`asyncio.timeout`, due a margin before pytest-timeout's limit (counted from when pytest-timeout
started its timer, so slow fixtures use up the same budget): the test task is cancelled and
the test fails with a message naming the limit, and the run goes on. pytest-timeout stays the
outer guard, for sync tests and for a loop blocked by sync code.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import pytest

# (time.monotonic() when pytest-timeout started its timer, its settings) of the running test
TIMER = pytest.StashKey[tuple[float, Any]]()
FIRED = pytest.StashKey[bool]()  # the guard cancelled this test
MAX_MARGIN = 10.0  # seconds left to pytest-timeout after the guard fires (teardown, cancellation)
MIN_MARGIN = 0.5


def margin(timeout: float) -> float:
    """Seconds between the guard's deadline and pytest-timeout's: 10 %, within 0.5-10 s, at most half."""
    return min(MAX_MARGIN, max(MIN_MARGIN, timeout * 0.1), timeout / 2)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Note when pytest-timeout's timer starts and its settings; pytest-timeout still sets it."""
    item.stash[TIMER] = (time.monotonic(), settings)


def _debugging(settings: Any) -> bool:
    """True when pytest-timeout would not fire either (a debugger is attached)."""
    if getattr(settings, "disable_debugger_detection", False):
        return False
    try:
        from pytest_timeout import is_debugging
    except ImportError:
        return False
    return bool(is_debugging())


def guarded(item: pytest.Item, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """func, cancelled and failed when the test's budget runs out (no timer: func unchanged)."""

    @functools.wraps(func)
    async def run(*args: Any, **kwargs: Any) -> Any:
        timer = item.stash.get(TIMER, None)
        if timer is None or _debugging(timer[1]):
            return await func(*args, **kwargs)
        started, settings = timer
        limit = float(settings.timeout)
        budget = limit - margin(limit)
        loop = asyncio.get_running_loop()
        scope = asyncio.timeout_at(loop.time() + (started + budget - time.monotonic()))
        try:
            async with scope:
                return await func(*args, **kwargs)
        except TimeoutError:
            if scope.expired():  # the guard cancelled the test (not a TimeoutError of its own)
                item.stash[FIRED] = True
                pytest.fail(
                    f"{item.nodeid} still running {budget:g} s after its timeout started: "
                    f"cancelled by the async hang guard, {limit - budget:g} s before "
                    f"pytest-timeout's {limit:g} s limit (the traceback above shows where it "
                    f"waited; docs/testing.md \"Hung tests\")" + _other_tasks())
            raise

    return run


def _other_tasks(limit: int = 8) -> str:
    """The loop's other unfinished tasks, by name and coroutine (what the test may have waited for)."""
    current = asyncio.current_task()
    others = sorted((task for task in asyncio.all_tasks() if task is not current and not task.done()),
                    key=lambda task: task.get_name())
    if not others:
        return ""
    lines = [f"  {task.get_name()}: {getattr(task.get_coro(), '__qualname__', task.get_coro())}"
             for task in others[:limit]]
    more = f"\n  ... and {len(others) - limit} more" if len(others) > limit else ""
    return "\nother tasks still running:\n" + "\n".join(lines) + more


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Run an async test's coroutine under the guard (pytest-asyncio makes it a sync call after this)."""
    # pytest-asyncio's items name what they run: (item, "obj"), or hypothesis' inner test
    owner, name = getattr(item, "_synchronization_target_attr", (None, ""))
    func = getattr(owner, name, None) if owner is not None else None
    if func is None or not asyncio.iscoroutinefunction(func):
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(owner, name, guarded(item, func))
        return (yield)



@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    """After a test the guard stopped, collect its garbage now, at a safe point.

    Another task may hold pytest-timeout's swallowed failure; collected later, at a random
    moment (inside `ast.parse` of an import, say), its "exception was never retrieved" finaliser
    trips CPython 3.11's "AST constructor recursion depth mismatch" and pytest crashes.
    """
    try:
        return (yield)
    finally:
        if item.stash.get(FIRED, False):
            gc.collect()
