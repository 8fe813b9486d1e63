"""The worker's young collections: run at the loop's next turn once enough is allocated, never before."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from customer.application import young_collections


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations collected while the test runs, under the service's thresholds."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    saved = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    gc.collect()
    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)
        gc.set_threshold(*saved)


def test_a_young_collection_runs_at_the_next_turn_once_a_fifth_of_the_threshold_is_allocated(
        collections: list[int]) -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        kept = [[i] for i in range(50_000 // young_collections.EARLY + 100)]
        young_collections.collect_soon()
        before = list(collections)  # nothing yet: it runs when the caller awaits
        await asyncio.sleep(0)
        assert kept
        return before, list(collections)

    before, after = asyncio.run(scenario())
    assert before == []
    assert after == [0]
    assert gc.get_threshold() == (50_000, 20, 20)  # the threshold is put back


def test_no_collection_is_asked_for_below_a_fifth_of_the_threshold(collections: list[int]) -> None:
    async def scenario() -> list[int]:
        young_collections.collect_soon()
        await asyncio.sleep(0)
        return list(collections)

    assert asyncio.run(scenario()) == []


def test_install_makes_gen_1_collections_as_rare_as_before_once(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = gc.get_threshold()
    monkeypatch.setattr(young_collections, "_installed", False)
    try:
        gc.set_threshold(50_000, 20, 20)
        young_collections.install()
        young_collections.install()
        assert gc.get_threshold() == (50_000, 20 * young_collections.EARLY, 20)
    finally:
        gc.set_threshold(*saved)
