"""How each message changes a customer's state (call records, card and ledger events, invoices)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.contracts.calls import CallRecord
from shared.envelope import EventEnvelope
from shared.money import with_tax

from alerts.application.state import ZERO, CustomerState
from alerts.domain.windows import minute_of


def dec(value: Any) -> Decimal:
    """Decimal text (or a number) as Decimal; nonsense is zero."""
    try:
        return Decimal(str(value)) if value is not None else ZERO
    except InvalidOperation:
        return ZERO


def apply_call(s: CustomerState, cdr: CallRecord) -> datetime:
    """A call record: its charge with the customer's tax, the day's spend, the window; its end time."""
    charge = with_tax(cdr.charge, s.tax)
    s.charges += charge
    day = cdr.ended_at.date()
    if s.spend_day is None or day > s.spend_day:
        s.spend_day, s.day_spend = day, ZERO
    if day == s.spend_day:
        s.day_spend += charge
    s.window.add(minute_of(cdr.ended_at), cdr.connected, cdr.duration_s, cdr.pdd_ms)
    s.spent = True
    return cdr.ended_at


def _add(s: CustomerState, kind: str, amount: Decimal) -> None:
    if kind == "payment":
        s.payments += amount
    elif kind == "refund":
        s.refunds += amount
    elif kind == "adjustment":
        s.adjustments += amount


CARD_FIELDS = {"name", "tags", "currency", "tax", "debit_limit"}


def _card(s: CustomerState, name: str, value: Any) -> None:
    if name == "name":
        s.name = str(value or "")
    elif name == "tags":
        s.tags = tuple(value or ())
    elif name == "currency":
        s.currency = str(value or "USD")
    elif name == "tax":
        s.tax = dec(value)
    elif name == "debit_limit":
        s.debit_limit = dec(value)


def apply_customer_event(s: CustomerState, event: EventEnvelope) -> bool:
    """A card or ledger event; True when it can move a rule's value (then evaluate)."""
    data, kind = event.data, event.type
    if kind == "CustomerCreated":
        for name in CARD_FIELDS:
            _card(s, name, data.get(name))
        s.deleted = False
    elif kind == "CustomerUpdated":
        changes = data.get("changes") or {}
        touched = CARD_FIELDS & changes.keys()
        for name in touched:
            _card(s, name, (changes[name] or {}).get("new"))
        if not touched:
            return False
    elif kind == "CustomerDeleted":
        s.deleted = True
    elif kind == "PaymentRecorded":
        amount = dec(data.get("amount"))
        if data.get("status") == "completed":
            _add(s, str(data.get("kind")), amount)
        elif data.get("status") == "pending":
            s.pending[str(data.get("payment_id"))] = [str(data.get("kind")), str(amount)]
        else:
            return False
    elif kind == "PaymentStatusChanged":
        held = s.pending.pop(str(data.get("payment_id")), None)
        if held is None:
            return False
        if data.get("new") == "completed":
            _add(s, held[0], dec(held[1]))
    else:
        return False
    s.dirty = True
    return kind != "CustomerDeleted"


def _less_due(s: CustomerState, invoice: str, amount: Decimal) -> bool:
    due = s.overdue.get(invoice)
    if due is None:
        return False
    left = dec(due) - amount
    if left > ZERO:
        s.overdue[invoice] = str(left)
    else:
        del s.overdue[invoice]
    return True


def apply_billing_event(s: CustomerState, event: EventEnvelope) -> bool:
    """An invoice event: overdue invoices count until paid or void; credit notes add to the balance."""
    data, kind = event.data, event.type
    invoice = str(data.get("invoice_id") or "")
    if kind == "InvoiceOverdue":
        s.overdue[invoice] = str(dec(data.get("amount_due")))
    elif kind in ("InvoicePaid", "InvoiceVoided"):
        if s.overdue.pop(invoice, None) is None:
            return False
    elif kind == "PaymentAllocated":
        if not _less_due(s, invoice, dec(data.get("amount"))):
            return False
    elif kind == "CreditNoteIssued":
        s.credit_notes += dec(data.get("amount"))
        _less_due(s, invoice, dec(data.get("amount")))
    else:
        return False
    s.dirty = True
    return True
