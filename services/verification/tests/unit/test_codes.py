"""Code rules: format, HMAC, expiry, tries, rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shared.errors import ErrorCode, ServiceError
from verification.domain import codes

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
PEPPER = codes.pepper_from("key")


def record(**changes: object) -> codes.CodeRecord:
    base = codes.CodeRecord(
        id="v1", customer_id="c1", contact_id="k1", channel="email", target="a@example.com",
        code_hash=codes.code_hash(PEPPER, "v1", "123456"), expires_at=NOW + timedelta(minutes=10),
        attempts=0, events=1, status="open",
    )
    return codes.CodeRecord(**{**base.__dict__, **changes})


def test_codes_are_six_digits_and_stored_only_as_an_hmac() -> None:
    seen = {codes.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in seen) and len(seen) > 150
    stored = codes.code_hash(PEPPER, "v1", "123456")
    assert "123456" not in stored and stored != codes.code_hash(PEPPER, "v2", "123456")
    assert stored != codes.code_hash(codes.pepper_from("other"), "v1", "123456")
    assert codes.matches(PEPPER, "v1", " 123 456 ", stored)
    assert not codes.matches(PEPPER, "v1", "123457", stored)


@pytest.mark.parametrize(("rec", "now", "target", "code"), [
    (None, NOW, "a@example.com", ErrorCode.CODE_NOT_REQUESTED),
    (record(status="superseded"), NOW, "a@example.com", ErrorCode.CODE_NOT_REQUESTED),
    (record(status="verified"), NOW, "a@example.com", ErrorCode.CONFLICT),
    (record(), NOW, "b@example.com", ErrorCode.CODE_NOT_REQUESTED),
    (record(attempts=5), NOW, "a@example.com", ErrorCode.CODE_LOCKED),
    (record(), NOW + timedelta(minutes=10), "a@example.com", ErrorCode.CODE_EXPIRED),
])
def test_unusable_codes(rec: codes.CodeRecord | None, now: datetime, target: str, code: str) -> None:
    with pytest.raises(ServiceError) as exc:
        codes.check_usable(rec, now, 5, target)
    assert exc.value.code == code


def test_wrong_tries_count_down_then_lock() -> None:
    assert codes.check_usable(record(attempts=4), NOW, 5, "a@example.com").attempts == 4
    assert codes.wrong_code(1, 5).message.endswith("4 tries left")
    assert codes.wrong_code(4, 5).message.endswith("1 try left")
    assert codes.wrong_code(5, 5).code == ErrorCode.CODE_LOCKED


def test_rate_limit() -> None:
    assert codes.rate_limited(4, 5, 600) is None
    limited = codes.rate_limited(5, 5, 600)
    assert limited is not None and limited.code == ErrorCode.RATE_LIMITED and "10 minutes" in limited.message


def test_a_request_key_replays_its_own_code_and_refuses_any_other_use() -> None:
    first = record(request_id="k")
    assert codes.first_request([], "k", "email", "a@example.com") is None
    assert codes.first_request([first], "k", "email", "a@example.com") == first
    for used, channel, target in (([first], "mobile", "a@example.com"), ([first], "email", "b@example.com"),
                                  ([record(confirm_id="k")], "email", "a@example.com")):
        with pytest.raises(ServiceError) as exc:
            codes.first_request(used, "k", channel, target)
        assert exc.value.code == ErrorCode.CONFLICT and exc.value.details[0].field == "Idempotency-Key"


def test_a_confirmation_key_replays_only_the_same_confirmation() -> None:
    first = record(status="verified", confirm_id="k")
    assert codes.first_confirmation([], "k", lambda r: True) is None
    assert codes.first_confirmation([first], "k", lambda r: r.id == "v1") == first
    for used, same in (([first], lambda r: False), ([record(request_id="k")], lambda r: True)):
        with pytest.raises(ServiceError) as exc:
            codes.first_confirmation(used, "k", same)
        assert exc.value.code == ErrorCode.CONFLICT and exc.value.details[0].field == "Idempotency-Key"
