"""Given events, when a command, then events: number ranges, blocks, bulk edits, bulk rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from customer.application.bulk_upload import validate_row
from customer.domain import events as ev
from customer.domain.bulk_edit import decide_bulk_edit
from customer.domain.decide import decide_create
from customer.domain.evolve import evolve_settings, fold
from customer.domain.number_blocks import (
    block_bounds,
    decide_assign,
    decide_number_range,
    decide_release,
    last_index,
    require_range,
)
from customer.domain.state import CustomerState, SettingsState
from shared.contracts.customer import CustomerCreate
from shared.contracts.events import REGISTRY
from shared.errors import ErrorCode, ServiceError

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
RANGE = {"start": 1000, "block_size": 1000, "end": 4999}


def given(*drafts: ev.Event) -> CustomerState:
    events = [REGISTRY.envelope(d, category="customer", stream_id="c1", version=i + 1, occurred_at=NOW) for i, d in enumerate(drafts)]
    state = fold(events)
    assert state is not None
    return state


def created(**fields: object) -> ev.Event:
    return decide_create(CustomerCreate(name="Acme", **fields), NOW)[0]  # type: ignore[arg-type]


def settings_with(rng: dict[str, int | None]) -> SettingsState:
    [draft] = decide_number_range(SettingsState(), rng, assigned_blocks=0, highest_end=None)
    event = REGISTRY.envelope(draft, category="settings", stream_id="global", version=1)
    return evolve_settings(SettingsState(), event)


def test_block_k_of_a_range() -> None:
    assert block_bounds(RANGE, 0) == (1000, 1999)
    assert block_bounds(RANGE, 2) == (3000, 3999)
    assert last_index(RANGE) == 3
    assert last_index({**RANGE, "end": 4998}) == 2  # a partial block at the end is not a block
    assert last_index({**RANGE, "end": None}) is None


def test_no_range_is_a_clear_error() -> None:
    with pytest.raises(ServiceError) as exc:
        require_range(SettingsState())
    assert exc.value.code == ErrorCode.NUMBER_RANGE_NOT_SET


def test_range_is_set_and_only_end_moves_while_blocks_are_assigned() -> None:
    state = settings_with(RANGE)
    assert state.number_range == RANGE and state.version == 1
    assert decide_number_range(state, RANGE, assigned_blocks=2, highest_end=2999) == []
    [moved] = decide_number_range(state, {**RANGE, "end": 9999}, assigned_blocks=2, highest_end=2999)
    assert moved.old == RANGE and moved.end == 9999
    for bad in ({**RANGE, "start": 2000}, {**RANGE, "block_size": 100}, {**RANGE, "end": 2500}):
        with pytest.raises(ServiceError) as exc:
            decide_number_range(state, bad, assigned_blocks=2, highest_end=2999)
        assert exc.value.code == ErrorCode.CONFLICT
    assert decide_number_range(state, {**RANGE, "start": 2000}, assigned_blocks=0, highest_end=None)


def test_assign_and_release_keep_the_card_list() -> None:
    state = given(created())
    one = {"id": "b1", "index": 1, "start": 2000, "end": 2999}
    zero = {"id": "b0", "index": 0, "start": 1000, "end": 1999}
    state = given(created(), *decide_assign(state, one), *decide_assign(state, zero))
    assert state.card()["number_blocks"] == [{"id": "b0", "start": 1000, "end": 1999},
                                             {"id": "b1", "start": 2000, "end": 2999}]
    [released] = decide_release(state, "b1")
    assert isinstance(released, ev.NumberBlockReleased) and released.start == 2000
    with pytest.raises(ServiceError) as exc:
        decide_release(state, "nope")
    assert exc.value.code == ErrorCode.NOT_FOUND


def test_bulk_edit_changes_only_what_differs() -> None:
    state = given(created(tags=["a", "b"], address={"city": "Leeds", "country": "GB"}, channels=5))
    drafts = decide_bulk_edit(state, {"channels": 5, "country": "DE"}, ["c"], ["a"], NOW)
    [update] = drafts
    assert set(update.changes) == {"address", "tags"}
    assert update.changes["address"]["new"] == {**state.fields["address"], "country": "DE"}
    assert update.changes["tags"]["new"] == ["b", "c"]
    assert decide_bulk_edit(state, {"channels": 5}, [], [], NOW) == []
    status = decide_bulk_edit(state, {"status": "penalty", "until": (NOW + timedelta(days=1)).isoformat()}, [], [], NOW)
    assert [type(d) for d in status] == [ev.CustomerStatusChanged]


def test_bulk_edit_keeps_the_single_change_rules() -> None:
    state = given(created(tags=[f"t{i}" for i in range(50)]))
    with pytest.raises(ServiceError) as exc:
        decide_bulk_edit(state, {}, ["one-too-many"], [], NOW)
    assert exc.value.code == ErrorCode.VALIDATION and exc.value.details[0].field == "tags"
    with pytest.raises(ServiceError) as no_until:
        decide_bulk_edit(state, {"status": "penalty"}, [], [], NOW)  # penalty needs until
    assert no_until.value.code == ErrorCode.VALIDATION


@pytest.mark.parametrize(("field", "value"), [
    ("tax", "1e2"), ("debit_limit", "1E3"), ("cps", "2e0"), ("minimum_payment", "1e-2"), ("channels", "1e3"),
    ("channels", "1.0"), ("channels", "1_000"),
])
def test_a_bulk_row_refuses_numbers_not_in_plain_notation(field: str, value: str) -> None:
    data, errors = validate_row({"name": "x", "currency": "EUR", field: value}, NOW)
    assert data is None and [e["field"] for e in errors] == [field]


def test_a_bulk_row_needs_a_currency_and_reports_every_column() -> None:
    data, errors = validate_row({"name": "", "tax": "101", "address": {"country": "ZZ"}}, NOW)
    assert data is None
    assert {e["field"] for e in errors} == {"currency", "name", "tax", "address.country"}
    good, none = validate_row({"name": " Acme ", "currency": "eur", "channels": "12"}, NOW)
    assert none == [] and good is not None and good["name"] == "Acme" and good["channels"] == 12
    past, errs = validate_row({"name": "x", "currency": "EUR", "status": "penalty",
                               "penalty_until": (NOW - timedelta(days=1)).isoformat()}, NOW)
    assert past is None and errs[0]["field"] == "penalty_until"
