"""Micro benchmark: the cost of typed events (construct, validate, dump) per event, 100k each."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.events import REGISTRY
from shared.contracts.events.customer import CustomerCreated, CustomerStatusChanged

N = 100_000
CREATED: dict[str, Any] = {
    "name": "Acme", "paypal_email": None, "website": None, "status": "active", "penalty_until": None,
    "debit_limit": "0", "minimum_payment": "0", "tax": "0", "currency": "USD", "portal_access": True,
    "channels": 0, "cps": "0", "address": {"line1": None, "line2": None, "city": None, "region": None,
    "postcode": None, "country": None}, "tags": [], "config_toml": "",
    "verification": {"email_required": False, "mobile_required": False, "approved_clis_only": False},
    "notes": "",
}
STATUS: dict[str, Any] = {"old": "active", "new": "blocked", "until": None, "old_until": None}


@dataclass(frozen=True)
class Draft:
    """The untyped event of before (type and data)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


def per_event_us(fn: Callable[[], object]) -> float:
    """Microseconds per call of `fn`, over N calls."""
    started = time.process_time()
    for _ in range(N):
        fn()
    return (time.process_time() - started) / N * 1e6


def command_path() -> None:
    """The customer command path per event (decide, envelope, apply) and a fold of 20 events."""
    from datetime import UTC, datetime

    from customer.domain.decide import decide_create, decide_update
    from customer.domain.evolve import apply, fold
    from shared.contracts.customer import CustomerCreate, CustomerPatch
    from shared.envelope import Metadata

    now, meta, n = datetime(2026, 1, 1, tzinfo=UTC), Metadata(), 20_000

    def envelope(event: Any, version: int) -> Any:
        return REGISTRY.envelope(event, category="customer", stream_id="c1", version=version,
                                 occurred_at=now, metadata=meta)

    created = decide_create(CustomerCreate(name="Acme"), now)[0]
    state = apply(None, created, stream_id="c1", version=1, at=now)
    patches = [CustomerPatch(channels=i % 7 + 1) for i in range(n)]
    started = time.process_time()
    for patch in patches:
        for event in decide_update(state, patch):
            envelope(event, 2)
            apply(state, event, stream_id="c1", version=2, at=now)
    update = (time.process_time() - started) / n * 1e6
    stream = [envelope(created, 1)] + [
        envelope(decide_update(state, CustomerPatch(channels=i + 1))[0], i + 2) for i in range(19)
    ]
    started = time.process_time()
    for _ in range(n // 20):
        fold(stream)
    folded = (time.process_time() - started) / (n // 20) * 1e6
    started = time.process_time()
    for _ in range(n):
        decide_create(CustomerCreate(name="Acme"), now)
    create = (time.process_time() - started) / n * 1e6
    print(f"update command (decide+envelope+apply): {update:.1f} us; create decide: {create:.1f} us;"
          f" fold of 20 events: {folded:.1f} us")


def main() -> None:
    """Print one line per way of making an event, then the command path's figures."""
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
    command_path()


if __name__ == "__main__":
    main()
