"""Sealing secrets that must travel (a new password on its way to the notifier) or rest
(SMTP password, Twilio token): Fernet (AES-128-CBC + HMAC) with the `sealed-secrets` key that
`shared.keys` derives from PATCHBAY_SECRET_KEY.

A sealed value reads `pb1:<key id>:<fernet token>`, so it names the key that opens it: after a
rotation (the old secret in PATCHBAY_SECRET_KEY_PREVIOUS) old values still open. Values sealed
before key ids (a bare Fernet token under the secret itself) still open too.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

from shared.keys import KeyRing

PURPOSE = "sealed-secrets"
PREFIX = "pb1:"


class SecretKeyMissing(RuntimeError):
    """No PATCHBAY_SECRET_KEY: secrets can be neither sealed nor read."""


def _fernet(raw: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(raw))


class Sealer:
    """Seals with the current key; unseals with whichever configured key a value names."""

    def __init__(self, key: str | None, previous: str | None = None) -> None:
        if not key:
            raise SecretKeyMissing(
                "PATCHBAY_SECRET_KEY is not set; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        self.ring = KeyRing.of(key, previous)
        self.key_id, raw = self.ring.current_key(PURPOSE)
        self._fernet = _fernet(raw)

    @staticmethod
    def new_key() -> str:
        """A fresh random key."""
        return Fernet.generate_key().decode()

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate a secret, tagged with the current key's id."""
        return f"{PREFIX}{self.key_id}:{self._fernet.encrypt(plaintext.encode()).decode()}"

    def unseal(self, token: str) -> str:
        """Decrypt a sealed secret; ValueError when no configured key opens it."""
        if token.startswith(PREFIX):
            kid, _, body = token[len(PREFIX):].partition(":")
            raw = self.ring.key(PURPOSE, kid)
            if raw is None:
                raise ValueError(f"the secret was sealed with key {kid}, which is not configured"
                                 " (add its secret to PATCHBAY_SECRET_KEY_PREVIOUS)")
            candidates = [_fernet(raw)]
        else:
            candidates = [f for f in map(_legacy, self.ring.secrets) if f is not None]
            body = token
        for fernet in candidates:
            try:
                return fernet.decrypt(body.encode()).decode()
            except InvalidToken:
                continue
        raise ValueError("the secret was sealed with another key or altered")

    def is_current(self, token: str) -> bool:
        """Whether a sealed value uses the current key (else: worth sealing again)."""
        return token.startswith(f"{PREFIX}{self.key_id}:")


def _legacy(secret: str) -> Fernet | None:
    """The pre-HKDF sealer: the secret itself as the Fernet key (when it is one)."""
    try:
        return Fernet(secret.encode())
    except ValueError:
        return None
