"""Balance: payments received minus call charges, in the customer's currency."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
from shared.contracts.events.customer import CustomerCreated
from shared.contracts.reporting import Balance

ZERO = Decimal(0)


class BalanceQueries:
    """Reads payments and call sums of the live tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def balance(self, customer_id: UUID) -> Balance:
        """Payments in the customer's currency minus the charges of its calls (before tax)."""
        cid = str(customer_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            currency = await conn.fetchval(
                "SELECT (event::jsonb)->'data'->>'currency' FROM audit_log WHERE stream_id = $1"
                " AND event IS NOT NULL AND type = $2 LIMIT 1", cid, CustomerCreated.TYPE,
            )
            paid = await conn.fetch(
                "SELECT currency, sum(amount) AS amount, count(*) AS n FROM payments"
                " WHERE customer_id = $1 GROUP BY currency", cid,
            )
            charges = await conn.fetchval(
                "SELECT coalesce(sum(charge), 0) FROM call_hours WHERE customer_id = $1", cid
            )
        by_currency = {r["currency"]: (r["amount"], r["n"]) for r in paid}
        if currency is None and len(by_currency) == 1:
            currency = next(iter(by_currency))
        payments, count = by_currency.pop(currency, (ZERO, 0)) if currency else (ZERO, 0)
        return Balance(
            customer_id=customer_id, currency=currency, payments=payments, charges=charges,
            balance=payments - charges, payments_count=count,
            other_currencies={k: v for k, (v, _) in by_currency.items()}, as_of=datetime.now(UTC),
        )
