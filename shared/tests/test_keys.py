"""One key per purpose from PATCHBAY_SECRET_KEY (HKDF), key ids, rotation, old values still open
(issue 14)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.fernet import Fernet
from shared.keys import PURPOSES, KeyRing, derive, key_id
from shared.secrets import Sealer

OLD = Sealer.new_key()
NEW = Sealer.new_key()


def test_each_purpose_has_its_own_key_never_the_secret_itself() -> None:
    keys = {purpose: derive(NEW, purpose) for purpose in PURPOSES}
    assert len(set(keys.values())) == len(PURPOSES)
    assert all(k not in (NEW.encode(), hashlib.sha256(NEW.encode()).digest()) for k in keys.values())
    assert derive(NEW, "sealed-secrets") != derive(OLD, "sealed-secrets")
    assert key_id(NEW) != key_id(OLD) and len(key_id(NEW)) == 8 and key_id(NEW) not in NEW
    with pytest.raises(ValueError, match="unknown key purpose"):
        derive(NEW, "anything")


def test_a_sealed_value_names_its_key_and_opens_after_a_rotation() -> None:
    before = Sealer(OLD).seal("smtp-password")
    assert before.startswith(f"pb1:{key_id(OLD)}:")
    rotated = Sealer(NEW, previous=OLD)
    assert rotated.unseal(before) == "smtp-password"
    assert not rotated.is_current(before)
    after = rotated.seal("smtp-password")
    assert after.startswith(f"pb1:{key_id(NEW)}:") and rotated.is_current(after)
    with pytest.raises(ValueError, match="PATCHBAY_SECRET_KEY_PREVIOUS"):
        Sealer(NEW).unseal(before)  # the old secret no longer configured: a clear error


def test_values_sealed_before_key_ids_still_open() -> None:
    legacy = Fernet(OLD.encode()).encrypt(b"twilio-token").decode()  # how releases before sealed
    assert Sealer(OLD).unseal(legacy) == "twilio-token"
    assert Sealer(NEW, previous=OLD).unseal(legacy) == "twilio-token"
    with pytest.raises(ValueError):
        Sealer(NEW).unseal(legacy)


def test_the_ring_reads_previous_secrets_from_a_comma_list() -> None:
    ring = KeyRing.of(NEW, f" {OLD} , {NEW},")
    assert ring.secrets == (NEW, OLD)
    assert ring.key("portal-sessions", key_id(OLD)) == derive(OLD, "portal-sessions")
    assert ring.key("portal-sessions", "00000000") is None
