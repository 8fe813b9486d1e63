"""Queries answered from the board's read model, and as-of from the event store."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from shared.contracts.customer import AsOfCard, AsOfQuery, ListCustomers
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import EventStore

from customer.domain.evolve import fold
from customer.projections import board


class CustomerQueries:
    """Reads: one card, the board, a card as it was."""

    def __init__(
        self, pool: asyncpg.Pool, totals: board.BoardTotals | None = None, store: EventStore | None = None,
        walk_pool: asyncpg.Pool | None = None,
    ) -> None:
        self.pool = pool
        self.walk_pool = walk_pool  # the board's walks (board.open_walk_pool)
        self.totals = totals or board.BoardTotals()
        # read only: as-of folds the stored events (opened with the store's data keys)
        self.store = store or EventStore(pool)

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
        return await board.list_customers(self.pool, query, self.totals, self.walk_pool)

    async def as_of(self, query: AsOfQuery) -> bytes:
        """The card folded from the customer's events that occurred up to `at`, or not-found."""
        state = fold(await self.store.load_as_of(str(query.customer_id), query.at))
        if state is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"customer {query.customer_id} did not exist at {query.at.isoformat()}"
            )
        return AsOfCard(as_of=query.at, card=state.card()).model_dump_json().encode()
