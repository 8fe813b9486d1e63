"""decide(command, state) -> events: the customer's rules, pure and synchronous."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.contracts.customer import NOT_NULL_FIELDS, CustomerCreate, CustomerPatch
from shared.errors import ErrorCode, ErrorDetail, ServiceError

from customer.domain import events as ev
from customer.domain.state import CustomerState, SettingsState

# a customer waiting for approval may only be approved (active) or turned down (inactive)
ALLOWED_FROM = {"pending_approval": {"active", "inactive"}}


def _invalid(field: str, message: str, code: str = ErrorCode.VALIDATION) -> ServiceError:
    return ServiceError(code, message, [ErrorDetail(field=field, message=message)])


def require_live(state: CustomerState | None, customer_id: object) -> CustomerState:
    """The customer exists and is not deleted."""
    if state is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"customer {customer_id} does not exist")
    if state.deleted:
        raise ServiceError(ErrorCode.DELETED, f"customer {customer_id} was deleted")
    return state


def require_expected_version(state: CustomerState, expected: int | None) -> None:
    """An expected version that is not the current one is a conflict (HTTP 412)."""
    if expected is not None and expected != state.version:
        raise ServiceError(
            ErrorCode.VERSION_MISMATCH,
            f"the customer is at version {state.version}, not {expected}: reload and retry",
        )


def _check_penalty(status: str, until: datetime | None, now: datetime, field: str) -> None:
    if status == "penalty":
        if until is None:
            raise _invalid(field, f"status 'penalty' needs `{field}`, a future time with a time zone")
        if until.tzinfo is None:
            raise _invalid(field, f"`{field}` must carry a time zone (UTC)")
        if until <= now:
            raise _invalid(field, f"`{field}` must be in the future")
    elif until is not None:
        raise _invalid(field, f"`{field}` is set only with status 'penalty'")


def decide_create(cmd: CustomerCreate, now: datetime) -> list[ev.Event]:
    """A new card: the penalty rule is the only one beyond field validation."""
    _check_penalty(cmd.status, cmd.penalty_until, now, "penalty_until")
    return [ev.CustomerCreated.model_validate(cmd.model_dump(mode="json"))]


def decide_update(state: CustomerState, patch: CustomerPatch) -> list[ev.Event]:
    """Changed fields only, each with its old and new value; currency never changes."""
    given = patch.model_dump(mode="json", include=patch.model_fields_set)
    if "currency" in given and given["currency"] != state.fields["currency"]:
        raise _invalid(
            "currency",
            f"the currency ({state.fields['currency']}) cannot change after creation;"
            " create a new customer for another currency",
            ErrorCode.CURRENCY_IMMUTABLE,
        )
    nulls = [k for k, v in given.items() if v is None and k in NOT_NULL_FIELDS]
    if nulls:
        raise ServiceError(
            ErrorCode.VALIDATION,
            "these fields cannot be null",
            [ErrorDetail(field=k, message="may not be null") for k in nulls],
        )
    changes: dict[str, Any] = {
        k: {"old": state.fields.get(k), "new": v}
        for k, v in given.items()
        if k != "currency" and state.fields.get(k) != v
    }
    return [ev.CustomerUpdated(changes=changes)] if changes else []


def decide_set_status(
    state: CustomerState, status: str, until: datetime | None, now: datetime
) -> list[ev.Event]:
    """Status transitions; `penalty` needs a future `until`; same status and until: nothing."""
    _check_penalty(status, until, now, "until")
    until_json = until.isoformat() if until else None
    current = state.status
    if status == current and until_json == state.fields.get("penalty_until"):
        return []
    allowed = ALLOWED_FROM.get(current)
    if allowed is not None and status != current and status not in allowed:
        raise _invalid(
            "status",
            f"a customer in '{current}' can only become {' or '.join(sorted(allowed))}",
            ErrorCode.INVALID_TRANSITION,
        )
    return [ev.CustomerStatusChanged(
        old=current, new=status, until=until_json, old_until=state.fields.get("penalty_until"),
    )]


def decide_penalty_expiry(state: CustomerState, now: datetime) -> list[ev.Event]:
    """A penalty whose time has passed returns the customer to active."""
    until = state.fields.get("penalty_until")
    if state.deleted or state.status != "penalty" or until is None:
        return []
    if datetime.fromisoformat(until) > now:
        return []
    return [ev.CustomerStatusChanged(old="penalty", new="active", until=None, old_until=until)]


def decide_delete(state: CustomerState) -> list[ev.Event]:
    """Deletion is an event; the name becomes free."""
    return [ev.CustomerDeleted(name=state.fields["name"])]


def decide_audit_settings(state: SettingsState, require_reason: bool) -> list[ev.Event]:
    """Turn the reason requirement on or off."""
    if state.require_reason == require_reason:
        return []
    change = {"require_reason": {"old": state.require_reason, "new": require_reason}}
    return [ev.AuditSettingsChanged(changes=change)]


def require_reason(settings: SettingsState, reason: str | None) -> None:
    """With the audit setting on, every change carries a reason."""
    if settings.require_reason and not reason:
        raise ServiceError(
            ErrorCode.REASON_REQUIRED,
            "a reason is required for every change (audit setting); send it as X-Audit-Reason",
            [ErrorDetail(field="reason", message="required")],
        )
