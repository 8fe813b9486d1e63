"""Queries answered from the board's read model."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from shared.contracts.customer import ListCustomers
from shared.errors import ErrorCode, ServiceError

from customer.projections import board


class CustomerQueries:
    """Reads: one card, the board."""

    def __init__(self, pool: asyncpg.Pool, totals: board.BoardTotals | None = None) -> None:
        self.pool = pool
        self.totals = totals or board.BoardTotals()

    async def get(self, customer_id: UUID) -> bytes:
        """One card as JSON, or a not-found / deleted error."""
        row = await self.pool.fetchrow(
            "SELECT card, deleted FROM customers WHERE id = $1", customer_id
        )
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"customer {customer_id} does not exist")
        if row["deleted"]:
            raise ServiceError(ErrorCode.DELETED, f"customer {customer_id} was deleted")
        return str(row["card"]).encode()

    async def list(self, query: ListCustomers) -> bytes:
        """One page of the board as JSON."""
        return await board.list_customers(self.pool, query, self.totals)
