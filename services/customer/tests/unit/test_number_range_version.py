"""The number range's version counts its own changes, not every settings change."""

from __future__ import annotations

import orjson
from customer.application.number_blocks import range_reply
from customer.domain import events as ev
from customer.domain.evolve import apply_settings
from customer.domain.state import SettingsState


def test_the_range_version_is_its_own() -> None:
    state = apply_settings(SettingsState(), ev.AuditSettingsChanged(
        changes={"require_reason": {"old": False, "new": True}}), 1)
    assert orjson.loads(range_reply(state)) == {"start": None, "block_size": None, "end": None, "version": 0}
    state = apply_settings(state, ev.NumberRangeSet(start=1000, block_size=100, end=None, old=None), 2)
    assert orjson.loads(range_reply(state))["version"] == 1 and state.version == 2
    state = apply_settings(state, ev.NumberRangeSet(start=1000, block_size=100, end=99_999, old=None), 3)
    assert orjson.loads(range_reply(state))["version"] == 2
