"""Codes: 6 digits, kept only as an HMAC, 10 minutes to live, 5 wrong tries, one use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.errors import ErrorCode, ServiceError, key_reused
from shared.keys import derive

CODE_DIGITS = 6


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def pepper_from(secret_key: str) -> bytes:
    """The HMAC key for codes, derived from PATCHBAY_SECRET_KEY (so a stolen table is not enough).

    Its own HKDF key (shared.keys): codes live 10 minutes, so a rotation needs no older peppers.
    """
    return derive(secret_key, "verification-codes")


def code_hash(pepper: bytes, verification_id: str, code: str) -> str:
    """What is stored of a code: HMAC-SHA256 over the verification id and the code."""
    return hmac.new(pepper, f"{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def matches(pepper: bytes, verification_id: str, code: str, stored: str) -> bool:
    """Constant-time comparison of a typed code with the stored HMAC."""
    typed = "".join(ch for ch in code if ch.isdigit())
    return hmac.compare_digest(code_hash(pepper, verification_id, typed), stored)


@dataclass(frozen=True)
class CodeRecord:
    """One code as stored."""

    id: str
    customer_id: str
    contact_id: str
    channel: str
    target: str
    code_hash: str
    expires_at: datetime
    attempts: int
    events: int
    status: str
    request_id: str | None = None  # the idempotency key of the request that issued it
    confirm_id: str | None = None  # the idempotency key of the confirmation that verified it


def check_usable(record: CodeRecord | None, now: datetime, max_attempts: int, target: str) -> CodeRecord:
    """The code may still be tried: it exists, is open, not expired, not locked, for this target."""
    if record is None or record.status == "superseded":
        raise ServiceError(ErrorCode.CODE_NOT_REQUESTED, "no code was requested for this; request one")
    if record.status == "verified":
        raise ServiceError(ErrorCode.CONFLICT, "this code was already used; request a new one if needed")
    if record.target != target:
        raise ServiceError(
            ErrorCode.CODE_NOT_REQUESTED, "the code was sent to another address or number; request a new one"
        )
    if record.attempts >= max_attempts:
        raise ServiceError(
            ErrorCode.CODE_LOCKED, f"{max_attempts} wrong tries: this code is locked; request a new one"
        )
    if now >= record.expires_at:
        raise ServiceError(ErrorCode.CODE_EXPIRED, "the code has expired; request a new one")
    return record


def wrong_code(attempts: int, max_attempts: int) -> ServiceError:
    """The error for a wrong code, after `attempts` wrong tries."""
    left = max_attempts - attempts
    if left <= 0:
        return ServiceError(
            ErrorCode.CODE_LOCKED,
            f"wrong code; {max_attempts} wrong tries: this code is locked; request a new one",
        )
    return ServiceError(ErrorCode.CODE_INVALID, f"wrong code; {left} {'try' if left == 1 else 'tries'} left")


def rate_limited(recent: int, limit: int, window_s: float) -> ServiceError | None:
    """Too many codes requested by one contact within the window."""
    if recent < limit:
        return None
    return ServiceError(
        ErrorCode.RATE_LIMITED, f"at most {limit} codes per {int(window_s // 60)} minutes; try again later"
    )


def first_request(
    used: Sequence[CodeRecord], command_id: str, channel: str, target: str
) -> CodeRecord | None:
    """The code an earlier request with this command id issued (a retry answers it again), if any.

    `used`: the contact's codes that hold the command id. A key that confirmed a code, or that
    asked for a code of another channel or target, is `key_reused` (409).
    """
    if any(record.confirm_id == command_id for record in used):
        raise key_reused()
    first = next((record for record in used if record.request_id == command_id), None)
    if first is not None and (first.channel, first.target) != (channel, target):
        raise key_reused()
    return first


def first_confirmation(
    used: Sequence[CodeRecord], command_id: str, same: Callable[[CodeRecord], bool]
) -> CodeRecord | None:
    """The code an earlier confirmation with this command id verified, when `same` says this is
    its retry (the same thing, the same code); None for a new key.

    A key that asked for a code, or that confirmed something else, is `key_reused` (409).
    """
    if any(record.request_id == command_id for record in used):
        raise key_reused()
    confirmed = [record for record in used if record.confirm_id == command_id]
    if not confirmed:
        return None
    first = next((record for record in confirmed if same(record)), None)
    if first is None:
        raise key_reused()
    return first
