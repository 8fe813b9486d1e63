"""Payments from billing (`billing.payments.<customer_id>`), once each by payment id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from reporting.projections.base import Projection, Source, Tables


class Payment(BaseModel):
    """A payment received, in its currency."""

    model_config = ConfigDict(frozen=True)

    payment_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=100)
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)
    received_at: AwareDatetime


PaymentItem = tuple[int, Payment]


class PaymentsProjection(Projection[PaymentItem]):
    """The payments behind each customer's balance."""

    name = "payments"
    tables = ("payments", "payments_checkpoints")
    checkpoint_table = "payments_checkpoints"
    sources = (Source("BILLING_EVENTS", ("billing.payments.*",)),)

    def decode(self, stream: str, seq: int, subject: str, data: bytes) -> PaymentItem:
        """One payment message."""
        return seq, Payment.model_validate_json(data)

    async def write(
        self, conn: asyncpg.Connection | asyncpg.Pool, tables: Tables, stream: str,
        items: Sequence[PaymentItem], last_seq: int,
    ) -> None:
        """Insert the payments not yet present and move the checkpoint, in one statement."""
        ids: list[str] = []
        customers: list[str] = []
        amounts: list[Decimal] = []
        currencies: list[str] = []
        times: list[datetime] = []
        seqs: list[int] = []
        for seq, p in items:
            ids.append(p.payment_id)
            customers.append(p.customer_id)
            amounts.append(p.amount)
            currencies.append(p.currency.upper())
            times.append(p.received_at)
            seqs.append(seq)
        sql = (
            f"WITH i AS (INSERT INTO {tables['payments']}"
            " (payment_id, customer_id, amount, currency, received_at, seq)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::text[],"
            " $5::timestamptz[], $6::bigint[]) ON CONFLICT (payment_id) DO NOTHING),"
            f" c AS ({self.checkpoint_sql(tables, 7, 8)}) SELECT 1"
        )
        await conn.execute(sql, ids, customers, amounts, currencies, times, seqs, stream, last_seq)
