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


Notes = tuple[Callable[[], None], Callable[[], None]]  # (intent, handed)


class RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's aiohttp client, sending to another base URL (a proxy or a test double)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self.base_url = base_url.rstrip("/")
        self.notes: Notes | None = None  # for the next request: around its last byte

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Rewrite the host, put the credentials in a header, send; note the intent right before
        the request's last byte and the handover right after it."""
        if url.startswith(TWILIO_HOST):
            url = self.base_url + url[len(TWILIO_HOST) :]
        auth = kwargs.pop("auth", None)
        if auth is not None:  # aiohttp deprecates its `auth=`: the same Basic header, made here
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Basic {token}"}
        notes, self.notes = self.notes, None
        form = kwargs.get("data")
        if notes is not None and form:
            body = urlencode(form, doseq=True).encode()
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Length": str(len(body)),
                                 "Content-Type": "application/x-www-form-urlencoded"}
            kwargs["data"] = _noted_around_its_last_byte(body, *notes)
        elif notes is not None:  # no body to split (never a message): noted before it goes
            notes[0]()
            notes[1]()
        return await super().request(method, url, *args, **kwargs)


async def _noted_around_its_last_byte(
    body: bytes, intent: Callable[[], None], handed: Callable[[], None]
) -> AsyncIterator[bytes]:
    """A request body streamed so that `intent` runs right before the byte that completes it and
    `handed` right after that byte was written.

    With a Content-Length, Twilio acts on a request only once its last byte arrives. aiohttp
    writes each chunk to the socket as the generator yields it, with no await in between, and
    asks for the next chunk only once that write is done. So a kill before `intent` leaves an
    incomplete request (never sent, queued again), a kill after `handed` a sent one (recorded as
    sent, unconfirmed), and a kill between the two an unknown outcome (failed as such, never
    sent again), as with SMTP's final `.`. One note before the byte called a request cut in that
    window sent, unconfirmed, though Twilio never got its last byte.
    """
    yield body[:-1]
    intent()
    yield body[-1:]
    handed()  # aiohttp asks for more only once the last byte went to the socket


class TwilioSender:
    """Sends SMS through Twilio's Messages API, one HTTP connection pool reused."""

    def __init__(self, cfg: SmsConfig) -> None:
        self.cfg = cfg
        # the aiohttp session must be made inside the running loop: this constructor is called there
        self._http = RebasedHttpClient(cfg.api_base_url, cfg.timeout_s)
        self._client = Client(cfg.account_sid, cfg.auth_token, http_client=self._http)

    async def send(
        self, to: str, body: str, on_handover: Callable[[], None],
        on_intent: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Send one SMS; `on_intent` runs right before the request's last byte, `on_handover` after it."""
        handed = False

        def intent() -> None:
            nonlocal handed
            on_intent()
            handed = True  # from here on Twilio may have the whole request

        self._http.notes = (intent, on_handover)
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
            self._http.notes = None
        return Outcome.sent(message.sid)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._http.close()
