"""The client address behind trusted proxies, and the per-address rate bucket (issue 14)."""

from __future__ import annotations

import pytest
from gateway.client_ip import parse_networks, rate_bucket, resolve

PROXIES = parse_networks("10.0.0.0/8, ::1")


def test_forwarded_hops_are_read_only_from_a_trusted_peer() -> None:
    assert resolve("203.0.113.5", ["1.2.3.4"], PROXIES) == "203.0.113.5"
    assert resolve("10.1.1.1", ["1.2.3.4"], PROXIES) == "1.2.3.4"
    assert resolve("10.1.1.1", ["6.6.6.6, 1.2.3.4, 10.2.2.2"], PROXIES) == "1.2.3.4"
    assert resolve("::1", [], PROXIES) == "::1"
    assert resolve("10.1.1.1", ["not-an-address"], PROXIES) == "10.1.1.1"


def test_ipv6_is_bucketed_by_slash_64_and_mapped_ipv4_as_ipv4() -> None:
    assert rate_bucket("2001:db8:1:2:aaaa::1") == rate_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert rate_bucket("2001:db8:1:3::1") != rate_bucket("2001:db8:1:2::1")
    assert rate_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert rate_bucket(None) == "unknown"


def test_a_bad_proxy_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks("10.0.0.0/8, 10.0.0.300")
