"""wait_for: bounded polling of sync and async predicates."""

from __future__ import annotations

import itertools

import pytest
from devtools.testing.waiting import wait_for


async def test_returns_the_first_truthy_value_of_a_sync_predicate() -> None:
    counter = itertools.count()
    assert await wait_for(lambda: next(counter) >= 3 and "done", interval=0) == "done"


async def test_awaits_async_predicates() -> None:
    calls: list[int] = []

    async def ready() -> bool:
        calls.append(1)
        return len(calls) == 2

    assert await wait_for(ready, interval=0) is True
    assert len(calls) == 2


async def test_times_out_with_a_clear_message() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the moon"):
        await wait_for(lambda: False, timeout=0.05, message="the moon")
