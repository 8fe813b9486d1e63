"""Bounded polling for tests, instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 (a polling budget, not a cancel scope)
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Poll a sync or async predicate until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        last = result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                 f"(last result: {last!r})")
        await asyncio.sleep(interval)


async def holds_for(
    predicate: Callable[[], object | Awaitable[object]],
    seconds: float,
    why: str,
    interval: float = 0.05,
) -> None:
    """An explicit quiet period: fail as soon as the predicate turns false within `seconds`.

    For "nothing else happened" checks (no second e-mail, no retry storm), where no event
    marks the end: the test states how long it watches and why, instead of a bare sleep.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if not result:
            raise AssertionError(f"stopped holding within the {seconds} s quiet period: {why}")
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
