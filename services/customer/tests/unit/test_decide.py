"""Given events, when a command, then events or an error: the customer's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from customer.domain import events as ev
from customer.domain.decide import (
    decide_audit_settings,
    decide_create,
    decide_delete,
    decide_penalty_expiry,
    decide_set_status,
    decide_update,
    require_expected_version,
    require_live,
    require_reason,
)
from customer.domain.evolve import fold
from customer.domain.state import CustomerState, SettingsState
from pydantic import ValidationError
from shared.contracts.customer import CustomerCreate, CustomerPatch
from shared.contracts.events import REGISTRY
from shared.errors import ErrorCode, ServiceError

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def given(*drafts: ev.Event) -> CustomerState:
    events = [
        REGISTRY.envelope(d, category="customer", stream_id="c1", version=i + 1, occurred_at=NOW)
        for i, d in enumerate(drafts)
    ]
    state = fold(events)
    assert state is not None
    return state


def created(**fields: object) -> ev.Event:
    return decide_create(CustomerCreate(name="Acme", **fields), NOW)[0]  # type: ignore[arg-type]


def error_code(exc: pytest.ExceptionInfo[ServiceError]) -> str:
    return exc.value.code


def test_create_holds_every_field_with_defaults() -> None:
    [draft] = decide_create(CustomerCreate(name="  Acme Telecom ", currency="eur"), NOW)
    assert isinstance(draft, ev.CustomerCreated)
    assert draft.name == "Acme Telecom"
    assert draft.currency == "EUR"
    assert draft.status == "active"
    assert draft.portal_access is True
    assert draft.tax == "0"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "a", "currency": "XYZ"}, "currency"),
        ({"name": "a", "debit_limit": "1e3"}, "debit_limit"),
        ({"name": "a", "debit_limit": "1.12345"}, "debit_limit"),
        ({"name": "a", "tax": "100.5"}, "tax"),
        ({"name": "a", "minimum_payment": "-1"}, "minimum_payment"),
        ({"name": "a", "channels": -1}, "channels"),
        ({"name": "a", "website": "ftp://x.y"}, "website"),
        ({"name": "a", "paypal_email": "not-an-email"}, "paypal_email"),
        ({"name": "a", "config_toml": "a = "}, "config_toml"),
        ({"name": "a", "config_toml": "x = '" + "y" * 70000 + "'"}, "config_toml"),
        ({"name": "a", "address": {"country": "ZZ"}}, "address.country"),
        ({"name": "a", "status": "sleeping"}, "status"),
        ({"name": "a", "surprise": 1}, "surprise"),
    ],
)
def test_every_field_rule_names_its_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        CustomerCreate.model_validate(fields)
    assert field in [".".join(str(p) for p in e["loc"]) for e in exc.value.errors()]


def test_toml_error_names_the_line() -> None:
    with pytest.raises(ValidationError) as exc:
        CustomerCreate(name="a", config_toml="a = 1\nb = = 2\n")
    assert "line 2" in str(exc.value)


def test_penalty_needs_a_future_until() -> None:
    with pytest.raises(ServiceError) as exc:
        decide_create(CustomerCreate(name="a", status="penalty"), NOW)
    assert error_code(exc) == ErrorCode.VALIDATION
    with pytest.raises(ServiceError) as past:
        decide_create(CustomerCreate(name="a", status="penalty", penalty_until=NOW), NOW)
    assert error_code(past) == ErrorCode.VALIDATION
    with pytest.raises(ServiceError) as not_penalty:
        decide_create(CustomerCreate(name="a", penalty_until=NOW + timedelta(hours=1)), NOW)
    assert error_code(not_penalty) == ErrorCode.VALIDATION


def test_update_records_only_changed_fields_with_old_and_new() -> None:
    state = given(created(channels=5, tags=["a"]))
    patch = CustomerPatch(channels=5, cps=Decimal("2.50"), tags=["b", "a"], notes="hello")
    [draft] = decide_update(state, patch)
    assert draft.changes == {
        "cps": {"old": "0", "new": "2.5"},
        "tags": {"old": ["a"], "new": ["a", "b"]},
        "notes": {"old": "", "new": "hello"},
    }


def test_update_with_nothing_changed_appends_nothing() -> None:
    state = given(created(channels=5))
    assert decide_update(state, CustomerPatch(channels=5, currency="USD")) == []


def test_currency_cannot_change() -> None:
    state = given(created(currency="EUR"))
    with pytest.raises(ServiceError) as exc:
        decide_update(state, CustomerPatch(currency="USD"))
    assert error_code(exc) == ErrorCode.CURRENCY_IMMUTABLE
    assert exc.value.details[0].field == "currency"


def test_null_for_a_required_field_is_refused() -> None:
    state = given(created())
    with pytest.raises(ServiceError) as exc:
        decide_update(state, CustomerPatch.model_validate({"name": None}))
    assert error_code(exc) == ErrorCode.VALIDATION and exc.value.details[0].field == "name"


def test_nullable_field_can_be_cleared() -> None:
    state = given(created(website="https://a.example"))
    [draft] = decide_update(state, CustomerPatch.model_validate({"website": None}))
    assert draft.changes["website"] == {"old": "https://a.example", "new": None}


def test_status_transitions() -> None:
    state = given(created())
    until = NOW + timedelta(hours=1)
    [draft] = decide_set_status(state, "penalty", until, NOW)
    assert draft.new == "penalty" and draft.until == until.isoformat()
    assert decide_set_status(state, "active", None, NOW) == []
    with pytest.raises(ServiceError) as no_until:
        decide_set_status(state, "penalty", None, NOW)
    assert error_code(no_until) == ErrorCode.VALIDATION
    with pytest.raises(ServiceError) as stray_until:
        decide_set_status(state, "inactive", until, NOW)
    assert error_code(stray_until) == ErrorCode.VALIDATION


def test_pending_approval_becomes_active_or_inactive_only() -> None:
    state = given(created(status="pending_approval"))
    with pytest.raises(ServiceError) as exc:
        decide_set_status(state, "penalty", NOW + timedelta(hours=1), NOW)
    assert error_code(exc) == ErrorCode.INVALID_TRANSITION
    assert decide_set_status(state, "active", None, NOW)[0].new == "active"


def test_penalty_expires_back_to_active_only_when_due() -> None:
    until = NOW + timedelta(minutes=5)
    penalised = decide_set_status(given(created()), "penalty", until, NOW)[0]
    state = given(created(), penalised)
    assert decide_penalty_expiry(state, NOW) == []
    [draft] = decide_penalty_expiry(state, until + timedelta(seconds=1))
    assert (draft.old, draft.new) == ("penalty", "active")
    after = given(created(), penalised, draft)
    assert after.status == "active" and after.fields["penalty_until"] is None


def test_deleted_customer_refuses_commands() -> None:
    state = given(created(), decide_delete(given(created()))[0])
    assert state.deleted
    with pytest.raises(ServiceError) as exc:
        require_live(state, "c1")
    assert error_code(exc) == ErrorCode.DELETED
    with pytest.raises(ServiceError) as missing:
        require_live(None, "c1")
    assert error_code(missing) == ErrorCode.NOT_FOUND


def test_expected_version_mismatch_is_a_conflict() -> None:
    state = given(created())
    require_expected_version(state, 1)
    require_expected_version(state, None)
    with pytest.raises(ServiceError) as exc:
        require_expected_version(state, 2)
    assert error_code(exc) == ErrorCode.VERSION_MISMATCH


def test_reason_required_by_the_audit_setting() -> None:
    [draft] = decide_audit_settings(SettingsState(), True)
    assert draft.changes["require_reason"] == {"old": False, "new": True}
    assert decide_audit_settings(SettingsState(require_reason=True), True) == []
    with pytest.raises(ServiceError) as exc:
        require_reason(SettingsState(require_reason=True), None)
    assert error_code(exc) == ErrorCode.REASON_REQUIRED
    require_reason(SettingsState(require_reason=True), "customer asked")
    require_reason(SettingsState(), None)


def test_a_state_copied_with_changes_equals_dataclasses_replace() -> None:
    from dataclasses import replace as dataclass_replace
    from datetime import UTC, datetime

    import pytest
    from customer.domain.state import CustomerState

    at = datetime(2026, 12, 6, tzinfo=UTC)
    state = CustomerState(id="c1", fields={"name": "A", "channels": 2}, version=3, created_at=at, updated_at=at,
                          approved_clis=("1",))
    later = datetime(2026, 12, 7, tzinfo=UTC)
    copied = state.copy_with(version=4, updated_at=later)
    assert copied == dataclass_replace(state, version=4, updated_at=later)
    assert state.version == 3 and copied.fields is state.fields
    assert state.with_fields(channels=5) == dataclass_replace(state, fields={"name": "A", "channels": 5})
    with pytest.raises(TypeError, match="no field"):
        state.copy_with(versoin=4)
