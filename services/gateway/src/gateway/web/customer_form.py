"""The customer form (new and Edit tab): its fields, and the form values as the API's JSON."""

from __future__ import annotations

from typing import Any

from shared.contracts.fields import country_code
from starlette.datastructures import FormData

from gateway.web.forms import checked, split_list, text, text_or_none

ADDRESS = ("line1", "line2", "city", "region", "postcode", "country")
VERIFICATION = ("email_required", "mobile_required", "approved_clis_only")
STATUSES = ("active", "inactive", "pending_approval", "penalty")
NUMBERS = ("debit_limit", "minimum_payment", "tax", "channels", "cps")
FIELDS = frozenset({
    "name", "paypal_email", "website", "status", "penalty_until", *NUMBERS, "currency",
    "portal_access", "address", *(f"address.{k}" for k in ADDRESS), "tags", "config_toml",
    "verification", *(f"verification.{k}" for k in VERIFICATION), "notes", "reason",
})


def multiline(form: FormData, name: str) -> str:
    """A textarea as written, with the browser's CRLF line ends made LF."""
    value = form.get(name)
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


def utc_instant(value: str | None) -> str | None:
    """A `datetime-local` value (no zone) read as UTC."""
    if not value:
        return None
    if value.endswith("Z") or "+" in value[10:]:
        return value
    return value + ("Z" if value.count(":") >= 2 else ":00Z")


def card_values(form: FormData) -> dict[str, Any]:
    """Every editable field of the form as the API spells it (currency and status not included)."""
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "paypal_email": text_or_none(form, "paypal_email"),
        "website": text_or_none(form, "website"),
        **{name: text(form, name) for name in NUMBERS},
        "portal_access": checked(form, "portal_access"),
        "address": {k: text_or_none(form, f"address.{k}") for k in ADDRESS},
        "tags": split_list(text(form, "tags")),
        "config_toml": multiline(form, "config_toml"),
        "verification": {k: checked(form, f"verification.{k}") for k in VERIFICATION},
        "notes": multiline(form, "notes"),
    }
    country = values["address"]["country"]
    if country:  # "Germany" is DE; never cut to its first two letters (GE, Georgia)
        values["address"]["country"] = country_code(country)
    return values


def new_customer(form: FormData) -> dict[str, Any]:
    """The body of POST /v1/customers."""
    body = card_values(form)
    body["currency"] = text(form, "currency").upper() or "USD"
    body["status"] = text(form, "status") or "active"
    until = utc_instant(text_or_none(form, "penalty_until"))
    if until:
        body["penalty_until"] = until
    return body


def blank_card() -> dict[str, Any]:
    """What the new-customer form starts with (the API's defaults)."""
    return {
        "name": "", "paypal_email": None, "website": None, "status": "active", "penalty_until": None,
        "debit_limit": "0", "minimum_payment": "0", "tax": "0", "currency": "USD", "portal_access": True,
        "channels": 0, "cps": "0", "address": dict.fromkeys(ADDRESS), "tags": [], "config_toml": "",
        "verification": dict.fromkeys(VERIFICATION, False), "notes": "",
    }


def card_from_form(form: FormData, base: dict[str, Any]) -> dict[str, Any]:
    """The card as the operator typed it, to show the form again (with errors) without losing input."""
    shown = {**base, **card_values(form)}
    for name in ("currency", "status", "penalty_until"):
        if form.get(name) is not None:
            shown[name] = text(form, name)
    return shown
