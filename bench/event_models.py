"""Micro benchmark: the cost of typed events (construct, validate, dump) per event, 100k each."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.events import REGISTRY
from shared.contracts.events.customer import CustomerCreated, CustomerStatusChanged

N = 100_000
CREATED = {
    "name": "Acme", "paypal_email": None, "website": None, "status": "active", "penalty_until": None,
    "debit_limit": "0", "minimum_payment": "0", "tax": "0", "currency": "USD", "portal_access": True,
    "channels": 0, "cps": "0", "address": {"line1": None, "line2": None, "city": None, "region": None,
    "postcode": None, "country": None}, "tags": [], "config_toml": "",
    "verification": {"email_required": False, "mobile_required": False, "approved_clis_only": False},
    "notes": "",
}
STATUS = {"old": "active", "new": "blocked", "until": None, "old_until": None}


@dataclass(frozen=True)
class Draft:
    """The untyped event of before (type and data)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


def per_event_us(fn: Callable[[], object]) -> float:
    """Microseconds per call of `fn`, over N calls."""
    started = time.perf_counter()
    for _ in range(N):
        fn()
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    """Print one line per way of making an event."""
    created = CustomerCreated.model_construct(**CREATED)
    cases: dict[str, Callable[[], object]] = {
        "untyped Draft(type, data) [before]": lambda: Draft("CustomerStatusChanged", dict(STATUS)),
        "CustomerStatusChanged.model_construct": lambda: CustomerStatusChanged.model_construct(**STATUS),
        "CustomerStatusChanged.model_validate": lambda: CustomerStatusChanged.model_validate(STATUS),
        "CustomerCreated.model_construct": lambda: CustomerCreated.model_construct(**CREATED),
        "CustomerCreated.model_validate": lambda: CustomerCreated.model_validate(CREATED),
        "REGISTRY.dump(CustomerCreated)": lambda: REGISTRY.dump(created),
    }
    for name, fn in cases.items():
        print(f"{name:45s} {per_event_us(fn):7.2f} us/event")


if __name__ == "__main__":
    main()
