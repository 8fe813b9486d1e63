"""Idempotency keys become command ids scoped to the caller."""

from __future__ import annotations

import uuid

from gateway.dependencies import COMMAND_ID_MAX, scoped_command_id


def test_a_key_is_scoped_to_its_principal() -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    assert scoped_command_id(one, "1") == f"{one}:1"
    assert scoped_command_id(one, "1") != scoped_command_id(two, "1")
    assert scoped_command_id(one, None) is None


def test_a_long_key_is_hashed_to_fit_and_never_meets_a_short_one() -> None:
    principal = str(uuid.uuid4())
    longest = "k" * 200
    hashed = scoped_command_id(principal, longest)
    assert hashed is not None and len(hashed) <= COMMAND_ID_MAX
    assert hashed.startswith(f"{principal}#") and hashed != scoped_command_id(principal, "k" * 199)
    fits = "k" * (COMMAND_ID_MAX - len(principal) - 1)
    assert scoped_command_id(principal, fits) == f"{principal}:{fits}"
    # a key that looks like the hashed form still gets the plain form
    tail = hashed.split("#", 1)[1]
    assert scoped_command_id(principal, tail) != hashed
