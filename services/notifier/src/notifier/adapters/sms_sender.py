"""SMS delivery with the twilio SDK's async client, against a configurable API base URL."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from shared.contracts.notifier import DEFAULT_TWILIO_BASE_URL
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notifier.domain.retry import Outcome, twilio_outcome

TWILIO_HOST = DEFAULT_TWILIO_BASE_URL


@dataclass(frozen=True)
class SmsConfig:
    """Twilio credentials and where its API is (the token already unsealed)."""

    account_sid: str
    auth_token: str
    from_number: str
    api_base_url: str = DEFAULT_TWILIO_BASE_URL
    timeout_s: float = 30.0


class RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's aiohttp client, sending to another base URL (a proxy or a test double)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self.base_url = base_url.rstrip("/")
        self.before_request: Callable[[], None] | None = None

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Rewrite the host, put the credentials in a header, send; note the handover right before
        the request's last byte."""
        if url.startswith(TWILIO_HOST):
            url = self.base_url + url[len(TWILIO_HOST) :]
        auth = kwargs.pop("auth", None)
        if auth is not None:  # aiohttp deprecates its `auth=`: the same Basic header, made here
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Basic {token}"}
        callback, self.before_request = self.before_request, None
        form = kwargs.get("data")
        if callback is not None and form:
            body = urlencode(form, doseq=True).encode()
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Length": str(len(body)),
                                 "Content-Type": "application/x-www-form-urlencoded"}
            kwargs["data"] = _noted_before_its_last_byte(body, callback)
        elif callback is not None:
            callback()
        return await super().request(method, url, *args, **kwargs)


async def _noted_before_its_last_byte(body: bytes, note: Callable[[], None]) -> AsyncIterator[bytes]:
    """A request body streamed so that `note` runs right before the byte that completes it.

    With a Content-Length, Twilio acts on a request only once its last byte arrives; aiohttp
    writes each chunk to the socket as the generator yields it, with no await in between. So
    the handover journal is written just before the request can take effect: a kill before the
    note leaves an incomplete request (never sent, queued again), a kill after it a sent one
    (recorded as sent, unconfirmed), as with SMTP's final `.`.
    """
    yield body[:-1]
    note()
    yield body[-1:]


class TwilioSender:
    """Sends SMS through Twilio's Messages API, one HTTP connection pool reused."""

    def __init__(self, cfg: SmsConfig) -> None:
        self.cfg = cfg
        # the aiohttp session must be made inside the running loop: this constructor is called there
        self._http = RebasedHttpClient(cfg.api_base_url, cfg.timeout_s)
        self._client = Client(cfg.account_sid, cfg.auth_token, http_client=self._http)

    async def send(self, to: str, body: str, on_handover: Callable[[], None]) -> Outcome:
        """Send one SMS; `on_handover` runs right before the request goes out."""
        handed = False

        def handover() -> None:
            nonlocal handed
            on_handover()
            handed = True

        self._http.before_request = handover
        try:
            message = await self._client.messages.create_async(to=to, from_=self.cfg.from_number, body=body)
        except TwilioRestException as exc:
            return twilio_outcome(exc.status, exc.code, str(exc.msg))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if handed and not isinstance(exc, aiohttp.ClientConnectorError):
                # the request may have reached Twilio: a retry could send the SMS twice
                return Outcome.handed_over(f"no answer after the request was sent: {type(exc).__name__}")
            return Outcome.unreachable(f"Twilio connection: {type(exc).__name__}: {exc}")
        finally:
            self._http.before_request = None
        return Outcome.sent(message.sid)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()
