"""Who a portal CLI test call may ring: allow and deny lists by E.164 prefix, a daily cap per customer.

A test call costs the carrier a real call; left open, the portal could make the switch ring
premium-rate numbers for profit (toll fraud). The deny list starts with widely known premium,
satellite and international-network ranges; operators set their own with the settings below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import ErrorCode, ErrorDetail, ServiceError

PREFIX = re.compile(r"^\+\d{1,15}$")
# US/CA 900 and 976, UK 09 and 087/070, DE 0900 and 0137, FR 089, IT 89, satellite and
# international networks (Inmarsat +870, +881 Iridium/Globalstar, +882, +883)
DEFAULT_DENY = "+1900,+1976,+449,+4487,+4470,+49900,+49137,+3389,+3989,+870,+881,+882,+883"


def parse_prefixes(text: str) -> tuple[str, ...]:
    """`+44, +1415` -> ("+44", "+1415"); raises ValueError naming an entry that is not a prefix."""
    prefixes = []
    for entry in (part.strip().replace(" ", "") for part in text.split(",")):
        if not entry:
            continue
        if not PREFIX.match(entry):
            raise ValueError(f"'{entry}' is not an E.164 prefix (a + and digits)")
        prefixes.append(entry)
    return tuple(prefixes)


@dataclass(frozen=True)
class TestCallPolicy:
    """Which numbers a test call may ring, and how many a customer may make per day."""

    __test__ = False  # not a pytest class, whatever its name says

    allow: tuple[str, ...] = ()  # empty: any number not denied
    deny: tuple[str, ...] = parse_prefixes(DEFAULT_DENY)
    per_customer_per_day: int = 20

    def check_number(self, number: str) -> None:
        """Refuse a number the lists do not let a test call ring."""
        why = None
        if any(number.startswith(p) for p in self.deny):
            why = "its prefix is on the deny list (premium-rate or special numbers)"
        elif self.allow and not any(number.startswith(p) for p in self.allow):
            why = "its prefix is not on the list of destinations test calls may ring"
        if why:
            raise ServiceError(
                ErrorCode.FORBIDDEN, f"test calls to {number} are not allowed: {why}",
                [ErrorDetail(field="number", message=why, type="test_call_not_allowed")],
            )

    def check_count(self, made_today: int) -> None:
        """Refuse the call past the customer's daily cap (`made_today`: calls in the last 24 hours)."""
        if made_today >= self.per_customer_per_day:
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                f"this customer has made its {self.per_customer_per_day} test calls of the last 24 hours;"
                " try again tomorrow or ask the carrier",
            )
