"""Contact passwords: generated, hashed with argon2id (off the event loop), verified, never shown."""

from __future__ import annotations

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# no look-alikes (0/O, 1/l/I), so a password read from an e-mail can be typed back
ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 16
# notes are checked against a stored hash word by word: at most this many candidate words
MAX_NOTE_CANDIDATES = 40
# each argon2id hash or check holds 64 MiB while it runs: this many at once at most. The
# default thread pool ran 6 side by side on 2 cores: a burst of new contacts took the service
# from 75 to 509 MB RSS (bench/memory.py). One at a time: ~8 hashes/s here; two: ~11.6/s for
# 64 MiB more (PATCHBAY_PASSWORD_HASH_THREADS)
HASHING_THREADS = 1


def generate_password() -> str:
    """A random 16-character password (~93 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))


def contains(text: str, password: str) -> bool:
    """True when the text contains the password (case-insensitively)."""
    return bool(text) and password.lower() in text.lower()


class Passwords:
    """argon2id hashing and verification, run in a worker thread (each takes tens of ms of CPU)."""

    def __init__(self, hasher: PasswordHasher | None = None, threads: int = HASHING_THREADS) -> None:
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB)
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        """The argon2id hash of a password."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """True when the password matches; an unknown login costs the same time as a wrong one."""
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._verify, hashed or self._dummy, password, hashed is not None)

    def _verify(self, hashed: str, password: str, real: bool) -> bool:
        try:
            return self.hasher.verify(hashed, password) and real
        except (VerificationError, InvalidHashError):
            return False

    async def notes_contain(self, hashed: str | None, *texts: str) -> bool:
        """Whether any word (or line) of the texts is the password behind a stored hash."""
        if hashed is None:
            return False
        candidates: list[str] = []
        for text in texts:
            for part in [*text.splitlines(), *re.split(r"\s+", text)]:
                part = part.strip().strip(".,;:!?\"'()[]<>")
                if len(part) >= 12 and part not in candidates:
                    candidates.append(part)
        for candidate in candidates[:MAX_NOTE_CANDIDATES]:
            if await self.verify(hashed, candidate):
                return True
        return False
