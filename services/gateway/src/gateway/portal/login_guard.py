"""The portal login's defences: one answer for every refusal, back-off on failures, bounded hashing.

- A refused login answers 401 "wrong e-mail or password" whatever the reason, so a right
  password is never confirmed by a different answer (403 for a blocked address, say).
- Failures are counted per e-mail *and* client network, after the password check: a stranger
  who guesses wrong locks out only their own network, never the contact.
- Every attempt counts per client network (an IPv4 address, an IPv6 /64).
- At most `portal_login_concurrency` password checks are in flight; past that a login is refused
  at once with 503 and Retry-After, instead of queuing behind expensive hashes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shared.errors import ErrorCode

from gateway.client_ip import rate_bucket
from gateway.errors import ApiError
from gateway.portal.rate_limit import RateLimiter, limit_key
from gateway.settings import GatewaySettings

WRONG_LOGIN = "wrong e-mail or password"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
REFUSED = (ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN)


class LoginSlots:
    """A bound on password checks in flight; no queue: a full house refuses at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """Hold one slot for a password check, or raise 503 when all are taken."""
        if self.busy >= self.size:
            raise ApiError(ErrorCode.UNAVAILABLE, "too many logins at once; try again in a second",
                           headers={"Retry-After": "1"})
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


class LoginGuard:
    """Counts a login's attempts and failures; turns every refusal into the same answer."""

    def __init__(self, limiter: RateLimiter, settings: GatewaySettings, email: str, ip: str | None) -> None:
        self.limiter = limiter
        self.settings = settings
        network = rate_bucket(ip)
        self.network_key = limit_key("login-ip", network)
        self.failure_key = limit_key("login-fail", f"{email.strip().lower()}|{network}")

    async def before(self) -> None:
        """Count the attempt for the network; refuse when this e-mail failed too often from here."""
        s = self.settings
        await self.limiter.hit(self.network_key, limit=s.portal_login_per_ip,
                               window_s=s.portal_login_window_s, what="login attempts from this address")
        await self.limiter.peek(self.failure_key, limit=s.portal_login_per_email,
                                window_s=s.portal_login_window_s, what="failed logins for this e-mail")

    async def refused(self, err: ApiError) -> ApiError:
        """The answer to a refused login (a failure counted); other errors pass unchanged."""
        if err.code not in REFUSED:
            return err
        with contextlib.suppress(ApiError):  # past the limit: the next attempt is refused by `before`
            await self.limiter.hit(self.failure_key, limit=self.settings.portal_login_per_email,
                                   window_s=self.settings.portal_login_window_s, what="failed logins")
        return ApiError(ErrorCode.UNAUTHENTICATED, WRONG_LOGIN, headers=CHALLENGE)

    async def succeeded(self) -> None:
        """A good login clears this e-mail's failures from this network."""
        await self.limiter.forget(self.failure_key)
