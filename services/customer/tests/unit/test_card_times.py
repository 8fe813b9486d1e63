"""The card's timestamps are written exactly as `datetime.isoformat` writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from customer.domain.state import _iso
from hypothesis import given
from hypothesis import strategies as st


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))])))
def test_iso_equals_isoformat(at: datetime) -> None:
    assert _iso(at) == at.isoformat()


def test_whole_seconds_and_naive_times() -> None:
    for at in (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 7)):
        assert _iso(at) == at.isoformat()
