"""Customers and their contacts, asked of the customer service over NATS (never its tables)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import nats.errors
from nats.aio.client import Client as NatsClient
from shared.contracts.customer import BoardFilter, Subjects
from shared.errors import ErrorCode, ServiceError
from shared.logging import CORRELATION_HEADER

Card = dict[str, Any]
PAGE = 1000


class CustomerDirectory:
    """Reads customer cards (with contacts) through `customer.query.get` and `customer.query.list`."""

    def __init__(self, nc: NatsClient, *, timeout_s: float = 5.0, concurrency: int = 64) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)

    async def _ask(self, subject: str, body: dict[str, Any], correlation_id: str | None) -> Any:
        headers = {CORRELATION_HEADER: correlation_id} if correlation_id else None
        try:
            async with self._slots:
                msg = await self.nc.request(
                    subject, json.dumps(body, default=str).encode(), timeout=self.timeout_s, headers=headers
                )
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
            raise ServiceError(ErrorCode.UNAVAILABLE, "the customer service did not answer") from None
        return json.loads(msg.data)

    async def get_many(
        self, ids: Sequence[UUID], correlation_id: str | None = None
    ) -> tuple[list[Card], list[tuple[UUID, str]]]:
        """Cards of these customers, and (id, reason) for those that cannot be had."""
        replies = await asyncio.gather(
            *(self._ask(Subjects.GET, {"customer_id": str(i)}, correlation_id) for i in ids)
        )
        cards: list[Card] = []
        missing: list[tuple[UUID, str]] = []
        for customer_id, reply in zip(ids, replies, strict=True):
            error = reply.get("error") if isinstance(reply, dict) else None
            if error:
                code = error.get("code")
                if code not in (ErrorCode.NOT_FOUND, ErrorCode.DELETED):
                    raise ServiceError(ErrorCode.UNAVAILABLE, f"the customer service answered {code}")
                missing.append((customer_id, "deleted" if code == ErrorCode.DELETED else "not found"))
            elif reply.get("deleted"):
                missing.append((customer_id, "deleted"))
            else:
                cards.append(reply)
        return cards, missing

    async def matching(self, board_filter: BoardFilter, correlation_id: str | None = None) -> list[Card]:
        """Every card the board filter matches, page by page."""
        query = board_filter.model_dump(mode="json", exclude_none=True)
        cards: list[Card] = []
        cursor: str | None = None
        while True:
            page = await self._ask(Subjects.LIST, {**query, "limit": PAGE, "cursor": cursor}, correlation_id)
            if "error" in page:
                error = page["error"]
                raise ServiceError(
                    error.get("code", ErrorCode.UNAVAILABLE), error.get("message", ""), error.get("details")
                )
            cards.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return cards
