"""Penalties end by themselves: a periodic sweep returns expired ones to active, as events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import structlog
from shared.contracts.customer import CommandMeta
from shared.envelope import SYSTEM

from customer.application.commands import CustomerCommands, ExpirePenalty

log = structlog.get_logger(__name__)


async def expire_due(pool: asyncpg.Pool, commands: CustomerCommands) -> int:
    """Send an ExpirePenalty for every customer whose penalty has passed; return how many."""
    rows = await pool.fetch(
        "SELECT id, penalty_until FROM customers"
        " WHERE status = 'penalty' AND NOT deleted AND penalty_until <= $1 LIMIT 1000",
        datetime.now(UTC),
    )
    for row in rows:
        # the same key for the same penalty: replicas sweeping together append once
        key = f"penalty-expiry:{row['id']}:{row['penalty_until'].isoformat()}"
        meta = CommandMeta(command_id=key, actor=SYSTEM, reason="penalty time passed")
        await commands.handle(ExpirePenalty(customer_id=str(row["id"]), meta=meta))
    if rows:
        log.info("penalties_expired", count=len(rows))
    return len(rows)


async def run_sweeper(pool: asyncpg.Pool, commands: CustomerCommands, interval_s: float) -> None:
    """Sweep every `interval_s` until cancelled; a failed sweep is logged and retried."""
    while True:
        try:
            await expire_due(pool, commands)
        except Exception as exc:
            log.warning("penalty_sweep_failed", error=str(exc))
        await asyncio.sleep(interval_s)
