"""A bulk edit of one customer: the same rules as a single update and status change, pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from shared.contracts.customer import CustomerPatch
from shared.errors import ErrorCode, ServiceError, details_from_pydantic

from customer.domain import events as ev
from customer.domain.decide import decide_set_status, decide_update
from customer.domain.state import CustomerState

PLAIN_FIELDS = ("channels", "cps", "portal_access", "tax", "debit_limit")


def decide_bulk_edit(
    state: CustomerState, changes: dict[str, Any], add_tags: list[str], remove_tags: list[str],
    now: datetime,
) -> list[ev.Event]:
    """Set fields, move the country, add/remove tags, change the status: only what differs."""
    patch: dict[str, Any] = {k: changes[k] for k in PLAIN_FIELDS if k in changes}
    if "country" in changes:
        patch["address"] = {**(state.fields.get("address") or {}), "country": changes["country"]}
    if add_tags or remove_tags:
        tags = (set(state.fields["tags"]) | set(add_tags)) - set(remove_tags)
        patch["tags"] = sorted(tags)
    try:
        drafts = decide_update(state, CustomerPatch.model_validate(patch)) if patch else []
    except ValidationError as exc:
        raise ServiceError(
            ErrorCode.VALIDATION, "the change does not fit this customer",
            details_from_pydantic(exc.errors(include_input=False, include_url=False)),
        ) from None
    if changes.get("status") is not None:
        until = changes.get("until")
        drafts += decide_set_status(
            state, changes["status"], datetime.fromisoformat(until) if until else None, now
        )
    return drafts
