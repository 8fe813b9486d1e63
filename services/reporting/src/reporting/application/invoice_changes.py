"""Changes to issued invoices: void, credit notes, overdue; and the invoice settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import asyncpg
import structlog
from shared.contracts.events.billing import (
    CreditNoteIssued,
    InvoiceOverdue,
    InvoicePaid,
    InvoiceSettingsChanged,
    InvoiceVoided,
)
from shared.contracts.invoices import (
    CreditNote,
    CreditNotePage,
    InvoiceSettings,
    IssueCreditNote,
    ListCreditNotes,
    SetInvoiceSettings,
    VoidInvoice,
)
from shared.envelope import SYSTEM, EventEnvelope
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import DuplicateCommand, EventStore, Fragment
from shared.idempotency import answered_before, fingerprint
from shared.ids import new_id
from shared.money import has_minor_precision

from reporting.adapters import invoice_rows as sql
from reporting.domain.invoice import ZERO, is_overdue, settled_status

log = structlog.get_logger(__name__)

SETTINGS_STREAM = "invoice-settings"
CREDIT_NOTE_PREFIX = "CN-"


class _SystemMeta:
    actor = SYSTEM
    correlation_id = None
    command_id = None
    reason = None


def paid_event(row: Any, cid: str, version: int, meta: Any, paid: Any, credited: Any) -> EventEnvelope:
    """InvoicePaid: nothing is left to pay."""
    return sql.event(InvoicePaid(
        invoice_id=str(row["id"]), customer_id=cid, document_number=row["document_number"],
        currency=row["currency"], total=str(row["total"]), amount_paid=str(paid),
        amount_credited=str(credited)), cid, version, meta)


class Changed(NamedTuple):
    """What a change to one invoice makes: events, the reply, extra writes, and its log line."""

    events: list[EventEnvelope]
    reply: str
    fragments: list[Fragment]
    log_event: str
    log_fields: dict[str, Any]


ChangeFn = Callable[[asyncpg.Connection, asyncpg.Record, str], Awaitable[Changed]]


class InvoiceChanges:
    """Void, credit notes, overdue marking and settings; each change with its event."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.pool: asyncpg.Pool = store.pool

    async def _once(self, cmd: Any) -> tuple[str | None, bytes | None]:
        request = fingerprint(cmd) if cmd.meta.command_id else None
        if cmd.meta.command_id:
            return request, await answered_before(self.store, cmd.meta.command_id, request)
        return request, None

    async def _replayed(self, cmd: Any, request: str | None) -> bytes:
        answer = await answered_before(self.store, cmd.meta.command_id, request)
        assert answer is not None
        return answer

    async def _change_invoice(self, cmd: VoidInvoice | IssueCreditNote, change: ChangeFn) -> bytes:
        """Run `change` on the locked invoice once per command id; its events and reply in one commit."""
        request, answer = await self._once(cmd)
        if answer is not None:
            return answer
        iid = str(cmd.invoice_id)
        cid = await sql.customer_of_invoice(self.pool, iid)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await sql.lock_customer(conn, cid)
                row = await sql.invoice_for_update(conn, iid)
                done = await change(conn, row, cid)
                replies = [(cmd.meta.command_id, done.reply, request)] if cmd.meta.command_id else ()
                await self.store.append(done.events, replies=replies, conn=conn, fragments=done.fragments)
        except DuplicateCommand:
            return await self._replayed(cmd, request)
        log.info(done.log_event, invoice_id=iid, customer_id=cid, **done.log_fields)
        return done.reply.encode()

    async def void(self, cmd: VoidInvoice) -> bytes:
        """Void an invoice nothing was paid on (a paid one is corrected by a credit note)."""
        async def change(conn: asyncpg.Connection, row: asyncpg.Record, cid: str) -> Changed:
            iid = str(row["id"])
            if row["status"] == "void":
                raise ServiceError(ErrorCode.CONFLICT, f"invoice {row['document_number']} is void already")
            if row["amount_paid"] > ZERO:
                raise ServiceError(ErrorCode.CONFLICT, f"invoice {row['document_number']} has payments"
                                   " allocated; issue a credit note instead")
            version = await sql.next_version(conn, cid)
            fact = InvoiceVoided(invoice_id=iid, customer_id=cid, document_number=row["document_number"],
                                 reason=cmd.reason, total=str(row["total"]), currency=row["currency"])
            await conn.execute("UPDATE invoices SET status = 'void', void_reason = $2, status_at = now()"
                               " WHERE id = $1", iid, cmd.reason)
            reply = sql.invoice_of(await conn.fetchrow(
                f"SELECT {sql.INVOICE_COLUMNS} FROM invoices WHERE id = $1", iid)).model_dump_json()
            return Changed([sql.event(fact, cid, version, cmd.meta)], reply, [], "invoice_voided", {})

        return await self._change_invoice(cmd, change)

    async def credit_note(self, cmd: IssueCreditNote) -> bytes:
        """A numbered credit note (CN-) against an invoice; it lowers the amount due first."""
        async def change(conn: asyncpg.Connection, row: asyncpg.Record, cid: str) -> Changed:
            iid = str(row["id"])
            self._check_credit(cmd, row)
            number = await sql.take_number(conn, "credit_note")
            note = CreditNote(
                id=new_id(), number=number, document_number=f"{CREDIT_NOTE_PREFIX}{number}",
                invoice_id=cmd.invoice_id, invoice_number=row["document_number"], customer_id=cid,
                currency=row["currency"], amount=cmd.amount, reason=cmd.reason, created_at=datetime.now(UTC))
            credited = row["amount_credited"] + cmd.amount
            status = settled_status(row["status"], row["total"], row["amount_paid"], credited)
            version = await sql.next_version(conn, cid)
            fact = CreditNoteIssued.model_validate(note.model_dump(mode="json"))
            events = [sql.event(fact, cid, version, cmd.meta)]
            if status != row["status"]:
                events.append(paid_event(row, cid, version + 1, cmd.meta, row["amount_paid"], credited))
            fragments = [
                Fragment("INSERT INTO credit_notes (id, number, document_number, invoice_id, customer_id,"
                         " currency, amount, reason, created_at, created_by) VALUES ({}, {}, {}, {}, {},"
                         " {}, {}, {}, {}, {}::jsonb)",
                         [note.id, number, note.document_number, iid, cid, note.currency, note.amount,
                          note.reason, note.created_at, cmd.meta.actor.model_dump_json()]),
                Fragment("UPDATE invoices SET amount_credited = {}, status = {},"
                         " status_at = CASE WHEN status = {} THEN status_at ELSE now() END WHERE id = {}",
                         [credited, status, status, iid]),
            ]
            return Changed(events, note.model_dump_json(), fragments, "credit_note_issued",
                           {"credit_note": note.document_number})

        return await self._change_invoice(cmd, change)

    @staticmethod
    def _check_credit(cmd: IssueCreditNote, row: asyncpg.Record) -> None:
        if row["status"] == "void":
            raise ServiceError(ErrorCode.CONFLICT, f"invoice {row['document_number']} is void")
        if not has_minor_precision(cmd.amount, row["currency"]):
            raise ServiceError(ErrorCode.VALIDATION, f"amount has more decimals than {row['currency']} has", [
                ErrorDetail(field="amount", type="minor_units", message="use the currency's minor units")])
        left = row["total"] - row["amount_credited"]
        if cmd.amount > left:
            raise ServiceError(ErrorCode.VALIDATION, f"at most {left} is left to credit on this invoice", [
                ErrorDetail(field="amount", type="above_invoice", message=f"at most {left}")])

    async def credit_notes(self, query: ListCreditNotes) -> CreditNotePage:
        """Credit notes newest first."""
        where, args_ = ["true"], []
        for key in ("invoice_id", "customer_id"):
            if (value := getattr(query, key)) is not None:
                args_.append(str(value) if key == "customer_id" else value)
                where.append(f"c.{key} = ${len(args_)}")
        cond = " AND ".join(where)
        rows = await self.pool.fetch(
            f"SELECT {sql.CREDIT_NOTE_COLUMNS} FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id"
            f" WHERE {cond} ORDER BY c.created_at DESC, c.id DESC LIMIT {query.limit}", *args_)
        total = await self.pool.fetchval(f"SELECT count(*) FROM credit_notes c WHERE {cond}", *args_)
        return CreditNotePage(items=[sql.credit_note_of(r) for r in rows], total=total)

    async def mark_overdue(self, today: date | None = None) -> int:
        """Open invoices past their due date become overdue (InvoiceOverdue each); how many."""
        today = today or datetime.now(UTC).date()
        due = await self.pool.fetch(
            "SELECT id, customer_id FROM invoices WHERE status = 'open' AND due_date < $1"
            " ORDER BY due_date", today)
        done = 0
        for item in due:
            cid, iid = item["customer_id"], str(item["id"])
            async with self.pool.acquire() as conn, conn.transaction():
                await sql.lock_customer(conn, cid)
                row = await sql.invoice_for_update(conn, iid)
                if not is_overdue(row["status"], row["due_date"], today):
                    continue
                version = await sql.next_version(conn, cid)
                due_now = row["total"] - row["amount_paid"] - row["amount_credited"]
                await conn.execute(
                    "UPDATE invoices SET status = 'overdue', status_at = now() WHERE id = $1", iid)
                await self.store.append([sql.event(InvoiceOverdue(
                    invoice_id=iid, customer_id=cid, document_number=row["document_number"],
                    due_date=row["due_date"].isoformat(), amount_due=str(due_now),
                    currency=row["currency"]), cid, version, _SystemMeta)], conn=conn)
                done += 1
        if done:
            log.info("invoices_overdue", count=done)
        return done

    async def settings(self) -> InvoiceSettings:
        """The invoice settings."""
        return await sql.read_settings(self.pool)

    async def set_settings(self, cmd: SetInvoiceSettings) -> bytes:
        """Change the settings (InvoiceSettingsChanged); next_number never moves down."""
        changes = cmd.settings.model_dump(exclude_unset=True)
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.lock_customer(conn, SETTINGS_STREAM)
            counter = await conn.fetchval(
                "SELECT next_number FROM invoice_counters WHERE kind = 'invoice' FOR UPDATE")
            old = await sql.read_settings(conn)
            if (wanted := changes.get("next_number")) is not None and wanted < counter:
                raise ServiceError(ErrorCode.CONFLICT, f"next_number may not go below {counter}: those"
                                   " numbers are taken (numbers are never reused)", [
                    ErrorDetail(field="next_number", type="number_taken", message=f"at least {counter}")])
            diff = {k: {"old": getattr(old, k), "new": v} for k, v in changes.items() if getattr(old, k) != v}
            if diff:
                if "next_number" in diff:
                    await conn.execute("UPDATE invoice_counters SET next_number = $1 WHERE kind = 'invoice'",
                                       changes["next_number"])
                cols = [k for k in diff if k != "next_number"]
                sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(cols))
                await conn.execute(
                    f"UPDATE invoice_settings SET {sets + ', ' if sets else ''}updated_at = now(),"
                    " updated_by = $1::jsonb", cmd.meta.actor.model_dump_json(), *[changes[k] for k in cols])
                version = await sql.next_version(conn, SETTINGS_STREAM)
                fact = InvoiceSettingsChanged.model_validate({"changes": diff})
                await self.store.append([sql.event(fact, SETTINGS_STREAM, version, cmd.meta)], conn=conn)
            reply = (await sql.read_settings(conn)).model_dump_json()
        log.info("invoice_settings_changed", fields=sorted(diff))
        return reply.encode()
