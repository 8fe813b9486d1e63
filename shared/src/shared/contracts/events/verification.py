"""Events of the verification service, on VERIFICATION_EVENTS (`events.verification.<id>.<Type>`).

Their data never holds a code. `target` is the e-mail address, mobile or CLI being verified.
"""

from __future__ import annotations

from typing import Annotated

from shared.contracts.events.base import PERSONAL, Event, register

VERIFICATION_CATEGORY = "verification"


class VerificationEvent(Event):
    """What every verification event says: whose contact, which channel, which verification."""

    customer_id: str
    contact_id: str | None
    channel: str
    verification_id: str


@register("VerificationCodeSent")
class VerificationCodeSent(VerificationEvent):
    """A code went out to `target`; it expires at `expires_at`."""

    target: Annotated[str, PERSONAL]
    expires_at: str


@register("VerificationCodeRejected")
class VerificationCodeRejected(VerificationEvent):
    """A wrong code; after `max_attempts` the verification is locked."""

    attempts: int
    locked: bool


class Verified(VerificationEvent):
    """The contact proved `target`."""

    target: Annotated[str, PERSONAL]


@register("EmailVerified")
class EmailVerified(Verified):
    """An e-mail address is verified."""


@register("MobileVerified")
class MobileVerified(Verified):
    """A mobile number is verified."""


@register("CliVerified")
class CliVerified(Verified):
    """A caller id is verified by a test call."""


OUTCOMES: dict[str, type[Verified]] = {"email": EmailVerified, "mobile": MobileVerified, "cli": CliVerified}
