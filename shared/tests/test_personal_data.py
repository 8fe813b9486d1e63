"""Field-level encryption of the marked personal data: every marked field, nothing else, and erasure."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable

import pytest
from shared.contracts.events import REGISTRY
from shared.contracts.events.customer import ContactAdded, ContactUpdated, CustomerCreated, CustomerUpdated
from shared.contracts.events.notification import DeliverySent
from shared.personal_data import (
    ERASED,
    DataKey,
    SubjectErased,
    decrypt_events,
    encrypt_events,
    reveal,
    subject_of,
)

CONTACT = {"id": "c1", "name": "Ann Example", "email": "ann@example.com", "mobile": "+4915112345678",
           "phone": None, "contact_type": "billing", "public_notes": "says hello", "private_notes": "owes us",
           "ip_whitelist": ["192.0.2.1/32", "198.51.100.0/24"], "email_verified": False,
           "mobile_verified": False}
CARD = {"name": "Acme", "paypal_email": "pay@acme.example", "website": None, "status": "active",
        "penalty_until": None, "debit_limit": "0", "minimum_payment": "0", "tax": "0", "currency": "EUR",
        "portal_access": True, "channels": 1, "cps": "1",
        "address": {"line1": "1 Main St", "line2": None, "city": "Oslo", "region": None, "postcode": "0150",
                    "country": "NO"},
        "tags": [], "config_toml": "", "verification": {}, "notes": "keep"}
SECRETS = ("Ann Example", "ann@example.com", "+4915112345678", "says hello", "owes us", "192.0.2.1/32", "pay@acme.example",
           "1 Main St", "new@acme.example", "old line")


class Keys:
    """Keys in memory; `erased` subjects have none."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}
        self.erased: set[str] = set()

    async def for_subjects(self, subjects: Iterable[str]) -> dict[str, DataKey]:
        wanted = set(subjects)
        if gone := wanted & self.erased:
            raise SubjectErased(gone)
        for s in wanted:
            self.keys.setdefault(s, DataKey.of(f"k{len(self.keys)}", s, os.urandom(32)))
        return {s: self.keys[s] for s in wanted}

    async def by_ids(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        live = {k.key_id: k for s, k in self.keys.items() if s not in self.erased}
        return {i: live[i] for i in key_ids if i in live}


def events() -> list:
    made = [
        CustomerCreated.model_validate(CARD),
        CustomerUpdated(changes={"paypal_email": {"old": "pay@acme.example", "new": "new@acme.example"},
                                 "address": {"old": {**CARD["address"], "line2": "old line"}, "new": CARD["address"]},
                                 "notes": {"old": "keep", "new": "kept"}}),
        ContactAdded(contact=CONTACT, password="generated"),
        ContactUpdated(contact_id="c1", changes={"name": {"old": "Ann Example", "new": "Ann B"},
                                                 "email_verified": {"old": False, "new": True}}),
    ]
    out = [REGISTRY.envelope(e, category="customer", stream_id="cust-1", version=i + 1) for i, e in enumerate(made)]
    delivery = DeliverySent(delivery_id="d1", message_id="m1", customer_id="cust-1", contact_id="c1", channel="email",
                            to="ann@example.com", template=None, subject=None, attempts=1, provider_id=None,
                            unconfirmed=False)
    return [*out, REGISTRY.envelope(delivery, category="notification", stream_id="d1", version=1)]


def test_every_marked_value_is_encrypted_and_opens_again() -> None:
    keys = Keys()
    plain = events()
    sealed = asyncio.run(encrypt_events(plain, keys))
    text = json.dumps([e.data for e in sealed])
    for secret in SECRETS:
        assert secret not in text, secret
    assert "keep" in text and "Oslo" in text and "billing" in text  # only what is marked
    for e in sealed:  # still valid as its model (the list stays a list of texts)
        REGISTRY.decode(e)
    assert [e.data for e in asyncio.run(decrypt_events(sealed, keys))] == [e.data for e in plain]
    assert asyncio.run(encrypt_events(sealed, keys)) == sealed  # never twice


def test_subjects_contact_first_else_customer() -> None:
    subjects = [subject_of(e) for e in events()]
    assert subjects == ["customer:cust-1", "customer:cust-1", "contact:c1", "contact:c1", "contact:c1"]


def test_an_erased_key_reads_erased_and_refuses_or_redacts_new_values() -> None:
    keys = Keys()
    sealed = asyncio.run(encrypt_events(events(), keys))
    keys.erased.add("contact:c1")
    opened = asyncio.run(decrypt_events(sealed, keys))
    contact = opened[2].data["contact"]
    assert contact["email"] == ERASED and contact["ip_whitelist"] == [ERASED, ERASED] and contact["phone"] is None
    assert opened[0].data["paypal_email"] == "pay@acme.example"  # the card's own key lives on
    assert reveal(sealed[4].data, {})["to"] == ERASED
    with pytest.raises(SubjectErased):
        asyncio.run(encrypt_events(events()[2:3], keys))
    [redacted] = asyncio.run(encrypt_events(events()[4:], keys, redact_erased=True))
    assert redacted.data["to"] == ERASED
