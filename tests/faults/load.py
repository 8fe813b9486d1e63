"""Customer commands under load, as a careful client sends them: idempotency keys, retried until answered."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from nats.aio.client import Client as NatsClient

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
class CommandLoad:
    """`clients` concurrent clients, each creating a customer and then updating it, forever."""

    nc: NatsClient | None = None
    clients: int = 16
    timeout_s: float = 2.0
    give_up_s: float = 90.0
    acked: dict[str, Acked] = field(default_factory=dict)
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start the clients."""
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        """Let each client finish its command in hand (retrying it until answered), then stop."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def wait_acked(self, count: int, timeout: float = 60.0) -> None:
        """Wait until at least count more commands are acknowledged from now."""
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {len(self.acked)} of {target} commands acknowledged in {timeout} s; "
                    f"retries {self.retry_reasons}, unexpected {self.unexpected[:3]}")
            await asyncio.sleep(0.05)

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
        deadline = time.monotonic() + self.give_up_s
        while True:
            reason = await self._attempt(kind, body, command_id)
            if isinstance(reason, dict):
                if "error" not in reason:
                    self.acked[command_id] = Acked(command_id, reason["id"], reason["version"], kind)
                    return reason
                code = reason["error"]["code"]
                if code not in RETRYABLE_CODES:
                    self.unexpected.append(f"{kind} {command_id}: {reason}")
                    return None
                reason = code
            self.retries += 1
            self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + 1
            if time.monotonic() > deadline:
                self.gave_up.append(command_id)
                return None
            await asyncio.sleep(0.1)

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
