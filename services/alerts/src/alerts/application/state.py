"""What the evaluator keeps per customer, and how it is loaded and saved with a batch's checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from shared.money import LedgerTotals

from alerts.domain.rules import Money, RuleState
from alerts.domain.windows import CallWindow, Minute

ZERO = Decimal(0)
CUSTOMER_COLUMNS = ("customer_id", "name", "tags", "currency", "tax", "debit_limit", "deleted", "payments",
                    "refunds", "adjustments", "credit_notes", "charges", "spend_day", "day_spend", "pending",
                    "overdue", "firings")


@dataclass(slots=True)
class CustomerState:
    """One customer as the rules see it: card fields, ledger, call window, rule states."""

    customer_id: str
    name: str = ""
    tags: tuple[str, ...] = ()
    currency: str = "USD"
    tax: Decimal = ZERO
    debit_limit: Decimal = ZERO
    deleted: bool = False
    payments: Decimal = ZERO
    refunds: Decimal = ZERO
    adjustments: Decimal = ZERO
    credit_notes: Decimal = ZERO
    charges: Decimal = ZERO
    spend_day: date | None = None
    day_spend: Decimal = ZERO
    pending: dict[str, list[str]] = field(default_factory=dict)
    overdue: dict[str, str] = field(default_factory=dict)
    firings: int = 0
    window: CallWindow = field(default_factory=CallWindow)
    rules: dict[UUID, RuleState] = field(default_factory=dict)
    dirty: bool = False  # the whole row changed (card, ledger)
    spent: bool = False  # only the charges (a call record): a narrower write
    dirty_rules: set[UUID] = field(default_factory=set)

    def money(self) -> Money:
        """The money figures the rules read."""
        totals = LedgerTotals(self.payments, self.refunds, self.adjustments, self.credit_notes, self.charges)
        overdue = sum((Decimal(v) for v in self.overdue.values()), ZERO)
        return Money(totals, self.debit_limit, self.day_spend, overdue)

    def row(self) -> tuple[Any, ...]:
        """The `customers` row."""
        return (self.customer_id, self.name, _json(self.tags), self.currency, self.tax, self.debit_limit,
                self.deleted, self.payments, self.refunds, self.adjustments, self.credit_notes, self.charges,
                self.spend_day, self.day_spend, _json(self.pending), _json(self.overdue), self.firings)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if value else ("[]" if isinstance(value, tuple | list) else "{}")


def _customer(row: asyncpg.Record) -> CustomerState:
    values = dict(row)
    values["tags"] = tuple(values["tags"])
    values["pending"] = json.loads(values["pending"])
    values["overdue"] = json.loads(values["overdue"])
    return CustomerState(**values)


async def load(conn: asyncpg.Connection, ids: list[str]) -> dict[str, CustomerState]:
    """These customers as stored (a customer never seen starts empty)."""
    out = {r["customer_id"]: _customer(r) for r in await conn.fetch(
        f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM customers WHERE customer_id = ANY($1::text[])", ids)}
    for cid in ids:
        out.setdefault(cid, CustomerState(cid))
    for r in await conn.fetch(
            "SELECT customer_id, minute, attempts, connected, duration_s, pdd_ms, pdd_n FROM call_minutes"
            " WHERE customer_id = ANY($1::text[])", ids):
        window = out[r["customer_id"]].window
        window.minutes[r["minute"]] = Minute(r["attempts"], r["connected"], r["duration_s"], r["pdd_ms"],
                                             r["pdd_n"])
        window.latest = max(window.latest, r["minute"])
    for r in await conn.fetch(
            "SELECT customer_id, rule_id, rule_version, armed, last_fired_at FROM rule_states"
            " WHERE customer_id = ANY($1::text[])", ids):
        state = RuleState(r["rule_version"], r["armed"], r["last_fired_at"])
        out[r["customer_id"]].rules[r["rule_id"]] = state
    return out


async def save(conn: asyncpg.Connection, states: list[CustomerState]) -> None:
    """Write what changed: customer rows, call minutes, rule states (then clear the marks)."""
    customers, spent, minutes, rules = [], [], [], []
    for s in states:
        if s.dirty:
            customers.append(s.row())
        elif s.spent:
            spent.append((s.customer_id, s.charges, s.spend_day, s.day_spend, s.firings))
        for k in s.window.dirty:
            m = s.window.minutes.get(k)
            if m is not None:
                minutes.append((s.customer_id, k, m.attempts, m.connected, m.duration_s, m.pdd_ms, m.pdd_n))
        for rid in s.dirty_rules:
            r = s.rules[rid]
            rules.append((rid, s.customer_id, r.rule_version, r.armed, r.last_fired_at))
    if customers:
        names = ", ".join(CUSTOMER_COLUMNS)
        sets = ", ".join(f"{c} = excluded.{c}" for c in CUSTOMER_COLUMNS[1:])
        # tags (text[]) travel as JSON text: unnest cannot take an array of arrays of any length
        await conn.execute(
            f"INSERT INTO customers ({names}) SELECT c, n, ARRAY(SELECT json_array_elements_text(t::json)),"
            " cur, tax, dl, del, pay, ref, adj, cn, ch, sd, ds, pe::jsonb, od::jsonb, f"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[],"
            " $7::bool[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[],"
            " $13::date[], $14::numeric[], $15::text[], $16::text[], $17::int[])"
            " AS x(c, n, t, cur, tax, dl, del, pay, ref, adj, cn, ch, sd, ds, pe, od, f)"
            f" ON CONFLICT (customer_id) DO UPDATE SET {sets}",
            *[list(c) for c in zip(*customers, strict=True)])
    if spent:
        await conn.execute(
            "INSERT INTO customers (customer_id, charges, spend_day, day_spend, firings)"
            " SELECT * FROM unnest($1::text[], $2::numeric[], $3::date[], $4::numeric[], $5::int[])"
            " ON CONFLICT (customer_id) DO UPDATE SET charges = excluded.charges,"
            " spend_day = excluded.spend_day, day_spend = excluded.day_spend, firings = excluded.firings",
            *[list(c) for c in zip(*spent, strict=True)])
    if minutes:
        cols = list(zip(*minutes, strict=True))
        await conn.execute(
            "INSERT INTO call_minutes (customer_id, minute, attempts, connected, duration_s, pdd_ms, pdd_n)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::bigint[],"
            " $6::bigint[], $7::int[]) ON CONFLICT (customer_id, minute)"
            " DO UPDATE SET attempts = excluded.attempts, connected = excluded.connected,"
            " duration_s = excluded.duration_s, pdd_ms = excluded.pdd_ms,"
            " pdd_n = excluded.pdd_n", *[list(c) for c in cols])
    if rules:
        cols = list(zip(*rules, strict=True))
        await conn.execute(
            "INSERT INTO rule_states (rule_id, customer_id, rule_version, armed, last_fired_at)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bool[], $5::timestamptz[])"
            " ON CONFLICT (customer_id, rule_id) DO UPDATE SET rule_version = excluded.rule_version,"
            " armed = excluded.armed, last_fired_at = excluded.last_fired_at", *[list(c) for c in cols])
    for s in states:
        s.dirty = s.spent = False
        s.window.dirty.clear()
        s.dirty_rules.clear()
