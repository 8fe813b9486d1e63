"""Customer commands under load, as a careful client sends them: idempotency keys, retried until answered."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from nats.aio.client import Client as NatsClient

from .processes import ServiceProcess

# answers that mean "not done, try again with the same key" (HTTP 500/503 to a client)
RETRYABLE_CODES = {"internal_error", "unavailable"}
SUBJECTS = {"create": "customer.cmd.create", "update": "customer.cmd.update"}


@dataclass(frozen=True)
class Acked:
    """What the service acknowledged for one command."""

    command_id: str
    customer_id: str
    version: int
    kind: str  # "create" or "update"


@dataclass
class RetryingClients:
    """`clients` concurrent clients that send each request, with one idempotency key, until it
    gets a final answer: what a careful client of a service being killed does."""

    nc: NatsClient | None = None
    clients: int = 16
    timeout_s: float = 2.0
    give_up_s: float = 90.0
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def acked_count(self) -> int:
        """How many requests were acknowledged so far."""
        raise NotImplementedError

    def spawn(self, client: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        """Start `clients` copies of a client loop."""
        self._tasks = [asyncio.create_task(client(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        """Let each client finish the request in hand (retrying it until answered), then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def wait_acked(self, count: int, timeout: float = 60.0) -> None:
        """Wait until at least count more requests are acknowledged from now."""
        target = self.acked_count() + count
        deadline = time.monotonic() + timeout
        while self.acked_count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.acked_count()} of {target} requests acknowledged in {timeout} s; "
                    f"retries {dict(self.retry_reasons)}, unexpected {self.unexpected[:3]}")
            await asyncio.sleep(0.05)

    async def until_answered(
        self, label: str, attempt: Callable[[], Awaitable[dict[str, Any] | str]]
    ) -> dict[str, Any] | None:
        """Repeat one request until it gets a final answer: the reply if acknowledged, else None."""
        deadline = time.monotonic() + self.give_up_s
        while True:
            reason = await attempt()
            if isinstance(reason, dict):
                if "error" not in reason:
                    return reason
                code = reason["error"]["code"]
                if code not in RETRYABLE_CODES:
                    self.unexpected.append(f"{label}: {reason}")
                    return None
                reason = code
            self.retries += 1
            self.retry_reasons[reason] += 1
            if time.monotonic() > deadline:
                self.gave_up.append(label)
                return None
            await asyncio.sleep(0.1)

    def assert_survived(self, *, retried: bool = True) -> None:
        """No unexpected answer, no request given up; and (faults being the point) retries happened."""
        print(f"acked {self.acked_count()}, retries {dict(self.retry_reasons)}")
        assert not self.unexpected, self.unexpected[:5]
        assert not self.gave_up, f"{len(self.gave_up)} requests never answered"
        if retried:
            assert self.retries > 0, "the faults should have forced retries"


@dataclass
class CommandLoad(RetryingClients):
    """Clients each creating a customer and then updating it, forever."""

    acked: dict[str, Acked] = field(default_factory=dict)

    def acked_count(self) -> int:
        """Commands acknowledged."""
        return len(self.acked)

    def start(self) -> None:
        """Start the clients."""
        self.spawn(self._client)

    async def survives_kills(self, proc: ServiceProcess, *, kills: int, acked: int, down_s: float = 0.3) -> None:
        """Run the load while `proc` is killed -9 `kills` times (`acked` more commands acknowledged
        before each kill and after the last restart; down `down_s` each time, so requests in
        flight time out and are retried with their keys), stop it, and check it survived."""
        self.start()
        try:
            await self.wait_acked(acked)
            for _ in range(kills):
                proc.kill()
                await asyncio.sleep(down_s)
                proc.start()
                await asyncio.to_thread(proc.wait_ready)
                await self.wait_acked(acked)
        finally:
            await self.stop()
        self.assert_survived()

    async def _client(self, index: int) -> None:
        while not self._stop.is_set():
            name = f"fault-{index}-{uuid.uuid4().hex[:12]}"
            card = await self._send("create", {"customer": {"name": name}})
            if card is None:
                continue
            for channels in range(1, 6):
                if self._stop.is_set():
                    return
                body = {"customer_id": card["id"], "changes": {"channels": channels}}
                if await self._send("update", body) is None:
                    break

    async def _send(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send one command until it gets a final answer; the card when acknowledged."""
        command_id = f"{kind}-{uuid.uuid4()}"
        card = await self.until_answered(f"{kind} {command_id}", lambda: self._attempt(kind, body, command_id))
        if card is not None:
            self.acked[command_id] = Acked(command_id, card["id"], card["version"], kind)
        return card

    async def _attempt(self, kind: str, body: dict[str, Any], command_id: str) -> dict[str, Any] | str:
        """One request: the decoded reply, or the name of what went wrong."""
        payload = orjson.dumps(body | {"meta": {"command_id": command_id}})
        assert self.nc is not None
        try:
            msg = await self.nc.request(SUBJECTS[kind], payload, timeout=self.timeout_s)
        except Exception as exc:  # timeout, no responders, reconnecting: all mean "try again"
            return type(exc).__name__
        reply: dict[str, Any] = orjson.loads(msg.data)
        return reply


@dataclass
class HttpCommandLoad(CommandLoad):
    """The same clients, through the gateway: `Idempotency-Key` headers, retried on errors and 5xx."""

    http: httpx.AsyncClient | None = None

    async def _attempt(self, kind: str, body: dict[str, Any], command_id: str) -> dict[str, Any] | str:
        assert self.http is not None
        headers = {"Idempotency-Key": command_id}
        try:
            if kind == "create":
                reply = await self.http.post("/v1/customers", json=body["customer"], headers=headers)
            else:
                reply = await self.http.patch(f"/v1/customers/{body['customer_id']}", json=body["changes"],
                                              headers=headers)
        except httpx.HTTPError as exc:  # refused, reset, timed out: the gateway is away
            return type(exc).__name__
        if reply.status_code >= 500:
            return f"http_{reply.status_code}"
        decoded: dict[str, Any] = reply.json()
        return decoded
