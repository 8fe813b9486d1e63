"""Sealing secrets that must travel (a new password on its way to the notifier) or rest
(SMTP password, Twilio token): Fernet (AES-128-CBC + HMAC) with a key from the environment."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SecretKeyMissing(RuntimeError):
    """No PATCHBAY_SECRET_KEY: secrets can be neither sealed nor read."""


class Sealer:
    """Seals and unseals short secrets with one key (`PATCHBAY_SECRET_KEY`)."""

    def __init__(self, key: str | None) -> None:
        if not key:
            raise SecretKeyMissing(
                "PATCHBAY_SECRET_KEY is not set; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        self._fernet = Fernet(key.encode())

    @staticmethod
    def new_key() -> str:
        """A fresh random key."""
        return Fernet.generate_key().decode()

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate a secret."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def unseal(self, token: str) -> str:
        """Decrypt a sealed secret; ValueError when it was not sealed with this key."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("the secret was sealed with another key or altered") from None
