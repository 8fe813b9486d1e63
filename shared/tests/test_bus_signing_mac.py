"""The command MAC keyed once and copied per message is the HMAC-SHA256 a one-shot call makes."""

from __future__ import annotations

import base64
import hmac
import os

from shared.bus_signing import mac, signed_bytes


def test_the_keyed_copy_gives_the_one_shot_hmac() -> None:
    keys = [os.urandom(32) for _ in range(3)]
    for i in range(300):  # the same keys again and again: the keyed object must not carry a message over
        key, payload = keys[i % 3], os.urandom(i % 97)
        one_shot = hmac.digest(key, signed_bytes("customer.cmd.create", str(i), payload), "sha256")
        assert mac(key, "customer.cmd.create", str(i), payload) == \
            base64.urlsafe_b64encode(one_shot).rstrip(b"=").decode()
