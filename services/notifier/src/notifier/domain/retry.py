"""When to try again: outcomes of one attempt and the backoff between attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    """What one attempt to hand a message to the provider came to."""

    SENT = "sent"
    TRANSIENT = "transient"  # worth another try (4xx, connection trouble, timeouts)
    PERMANENT = "permanent"  # no retry can help (5xx, an invalid number)


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt."""

    kind: OutcomeKind
    provider_id: str | None = None
    error: str | None = None
    unconfirmed: bool = False
    link_down: bool = False  # the provider could not be reached at all: pause the channel
    # the provider refused our credentials (SMTP 530/534/535 at login, Twilio 401): every message
    # would fail alike until an admin fixes the settings, so the channel pauses as for an outage
    credentials_refused: bool = False

    @property
    def pauses_channel(self) -> bool:
        """Every message of the channel would fail alike now: pause it (an outage, refused credentials)."""
        return self.link_down or self.credentials_refused

    @classmethod
    def sent(cls, provider_id: str | None = None) -> Outcome:
        """The provider accepted the message."""
        return cls(OutcomeKind.SENT, provider_id=provider_id)

    @classmethod
    def handed_over(cls, error: str) -> Outcome:
        """The whole message reached the provider but its answer was lost: never send it again."""
        return cls(OutcomeKind.SENT, error=error[:1000], unconfirmed=True)

    @classmethod
    def transient(cls, error: str) -> Outcome:
        """A failure that another attempt may not have."""
        return cls(OutcomeKind.TRANSIENT, error=error[:1000])

    @classmethod
    def unreachable(cls, error: str) -> Outcome:
        """The provider could not be reached (nothing was sent)."""
        return cls(OutcomeKind.TRANSIENT, error=error[:1000], link_down=True)

    @classmethod
    def permanent(cls, error: str) -> Outcome:
        """A failure that every attempt would have."""
        return cls(OutcomeKind.PERMANENT, error=error[:1000])


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, and a bound on attempts."""

    max_attempts: int = 8
    base_delay_s: float = 2.0
    max_delay_s: float = 600.0
    jitter: float = 0.2

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the n-th failed attempt (n >= 1)."""
        raw = min(self.max_delay_s, self.base_delay_s * float(2 ** max(0, attempts - 1)))
        return raw * (1 + random.uniform(-self.jitter, self.jitter))

    def decide(self, outcome: Outcome, attempts: int) -> str:
        """The delivery's next state: `sent`, `retry`, `failed`, or `dead` (out of attempts)."""
        if outcome.kind is OutcomeKind.SENT:
            return "sent"
        if outcome.kind is OutcomeKind.PERMANENT:
            return "failed"
        return "retry" if attempts < self.max_attempts else "dead"


# authentication replies: a settings problem an admin can fix, so worth retrying
AUTH_CODES = frozenset({530, 534, 535})


def smtp_outcome(code: int | None, message: str, *, at_login: bool = False) -> Outcome:
    """Classify an SMTP reply code: 5xx permanent, anything else worth a retry (a login refused:
    the credentials, `at_login`)."""
    text = f"SMTP {code}: {message}" if code else message
    if code is not None and 500 <= code < 600 and code not in AUTH_CODES:
        return Outcome.permanent(text)
    if at_login and code in AUTH_CODES:
        return Outcome(OutcomeKind.TRANSIENT, error=text[:1000], credentials_refused=True)
    return Outcome.transient(text)


# Twilio error codes that no retry fixes (invalid, unreachable or opted-out numbers)
TWILIO_PERMANENT_CODES = frozenset(
    {21211, 21214, 21217, 21401, 21408, 21610, 21612, 21614, 30003, 30005, 30006}
)


def twilio_outcome(status: int, code: int | None, message: str) -> Outcome:
    """Classify a Twilio API error: bad numbers and other 4xx are permanent, 429 and 5xx transient."""
    text = f"Twilio {status}" + (f" code {code}" if code else "") + f": {message}"
    if code in TWILIO_PERMANENT_CODES:
        return Outcome.permanent(text)
    if status == 401:
        return Outcome(OutcomeKind.TRANSIENT, error=text[:1000], credentials_refused=True)
    if status in (403, 429) or status >= 500:
        return Outcome.transient(text)  # credentials may be fixed; rate limits pass
    return Outcome.permanent(text)
