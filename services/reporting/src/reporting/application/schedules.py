"""Scheduled invoices: each customer whose card says weekly or monthly is invoiced for its closed period.

The schedule is read from the customer events in the audit log (the card field
`invoice_schedule`, product.md 13). The billing clock (one leader) runs it: the last closed
ISO week (Monday to Sunday) or calendar month, every day of it not invoiced yet, once per
customer and period (`invoice_schedule_runs`; the command id makes a retry answer the first).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import asyncpg
import structlog
from shared.contracts.reporting import GenerateInvoice
from shared.errors import ServiceError

from reporting.application.invoices import Invoices

log = structlog.get_logger(__name__)

_SCHEDULES = (
    "SELECT s.customer_id, s.schedule FROM ("
    " SELECT DISTINCT ON (customer_id) customer_id, changes::jsonb->'invoice_schedule'->>'new' AS schedule"
    " FROM audit_log WHERE category = 'customer' AND changes::jsonb ? 'invoice_schedule'"
    " ORDER BY customer_id, occurred_at DESC, version DESC) s"
    " WHERE s.schedule IN ('weekly', 'monthly') AND NOT EXISTS (SELECT 1 FROM audit_log d"
    "  WHERE d.customer_id = s.customer_id AND d.type = 'CustomerDeleted')"
)
ACTOR = {"kind": "system", "id": "billing-clock", "name": "invoice schedule"}


def closed_period(schedule: str, today: date) -> tuple[date, date]:
    """The last closed period before today: (first day, last day)."""
    if schedule == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    first_this = today.replace(day=1)
    last = first_this - timedelta(days=1)
    return last.replace(day=1), last


class InvoiceSchedules:
    """Issues the invoices of closed periods for customers with a schedule."""

    def __init__(self, invoices: Invoices) -> None:
        self.invoices = invoices
        self.pool: asyncpg.Pool = invoices.pool

    async def run(self, today: date | None = None) -> int:
        """One round for every scheduled customer; how many invoices were issued."""
        today = today or datetime.now(UTC).date()
        issued = 0
        for row in await self.pool.fetch(_SCHEDULES):
            cid, schedule = row["customer_id"], row["schedule"]
            start, end = closed_period(schedule, today)
            if await self.pool.fetchval(
                "SELECT 1 FROM invoice_schedule_runs WHERE customer_id = $1 AND schedule = $2"
                " AND period_start = $3", cid, schedule, start):
                continue
            outcome, invoice_id = await self._issue(cid, schedule, start, end, today)
            await self.pool.execute(
                "INSERT INTO invoice_schedule_runs"
                " (customer_id, period_start, schedule, outcome, invoice_id) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT DO NOTHING", cid, start, schedule, outcome, invoice_id)
            issued += outcome == "issued"
        if issued:
            log.info("scheduled_invoices_issued", count=issued)
        return issued

    async def _issue(self, cid: str, schedule: str, start: date, end: date,
                     today: date) -> tuple[str, str | None]:
        taken = {r["day"] for r in await self.pool.fetch(
            "SELECT day FROM invoiced_days WHERE customer_id = $1 AND day BETWEEN $2 AND $3",
            cid, start, end)}
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        days = [d for d in days if d not in taken]
        if not days:
            return "already_invoiced", None
        cmd = GenerateInvoice.model_validate({
            "meta": {"actor": ACTOR, "command_id": f"schedule:{cid}:{schedule}:{start.isoformat()}",
                     "reason": f"{schedule} invoice for {start.isoformat()} to {end.isoformat()}"},
            "customer_id": cid, "days": [d.isoformat() for d in days]})
        try:
            reply = json.loads(await self.invoices.generate(cmd, today=today))
        except ServiceError as err:  # nothing to invoice (no calls), the customer gone, ...
            return err.code, None
        if "error" in reply:
            return str(reply["error"]["code"]), None
        return "issued", str(reply["id"])
