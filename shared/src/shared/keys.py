"""One key per purpose, derived from PATCHBAY_SECRET_KEY with HKDF, each with a key id for rotation.

`PATCHBAY_SECRET_KEY` is never used as a key itself: sealing secrets, console cookies, portal
session tokens and verification-code peppers each get their own HKDF-SHA256 key, so a key
leaked from one use opens nothing else. Every key has a short id (derived from the secret too,
never revealing it); sealed values and tokens carry it. To rotate, set the new secret in
PATCHBAY_SECRET_KEY and the old one(s) in PATCHBAY_SECRET_KEY_PREVIOUS (comma-separated):
new values use the new key, old ones still open with theirs until re-sealed or expired.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"patchbay-key-derivation-v1"
PURPOSES = frozenset({"sealed-secrets", "console-cookies", "portal-sessions", "verification-codes"})


@functools.lru_cache(maxsize=64)
def derive(secret_key: str, purpose: str, length: int = 32) -> bytes:
    """The key of one purpose, derived from the secret (HKDF-SHA256, the purpose as `info`)."""
    if purpose not in PURPOSES and purpose != "key-id":
        raise ValueError(f"unknown key purpose '{purpose}'")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT, info=f"patchbay:{purpose}".encode())
    return hkdf.derive(secret_key.encode())


def key_id(secret_key: str) -> str:
    """A short, stable id of a secret (8 hex digits; derived, so it tells nothing of the secret)."""
    return derive(secret_key, "key-id", 4).hex()


def legacy_digest(secret_key: str, label: str) -> bytes:
    """The key the releases before HKDF derived (sha256 of a label and the secret): read-only use."""
    return hashlib.sha256(f"patchbay:{label}:".encode() + secret_key.encode()).digest()


@dataclass(frozen=True)
class KeyRing:
    """The current secret and the previous ones still accepted when reading."""

    current: str
    previous: tuple[str, ...] = ()

    @classmethod
    def of(cls, secret_key: str, previous: str | None = None) -> KeyRing:
        """From PATCHBAY_SECRET_KEY and PATCHBAY_SECRET_KEY_PREVIOUS (comma-separated)."""
        older = tuple(p.strip() for p in (previous or "").split(",") if p.strip() and p.strip() != secret_key)
        return cls(secret_key, older)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret, the current one first."""
        return (self.current, *self.previous)

    def current_key(self, purpose: str) -> tuple[str, bytes]:
        """The key id and key that new values of a purpose use."""
        return key_id(self.current), derive(self.current, purpose)

    def key(self, purpose: str, kid: str) -> bytes | None:
        """The key of a purpose for a key id (None: no secret of the ring has that id)."""
        for secret in self.secrets:
            if key_id(secret) == kid:
                return derive(secret, purpose)
        return None

    def keys(self, purpose: str) -> list[bytes]:
        """Every key of a purpose, the current one first (to try in turn)."""
        return [derive(secret, purpose) for secret in self.secrets]
