"""PayPal: its settings (an aggregate of their own) and the IPN inbox (the payment log).

An IPN is stored, raw, before anything else happens to it (`ipn_log`, outcome `pending`);
the gateway answers PayPal 200 once it is stored. `ipn_worker.IpnWorker` verifies and
applies it later, so a restart resumes what was pending.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
import structlog
from shared.contracts.payments import (
    DEFAULT_VERIFY_URL,
    IpnLogQuery,
    PaypalSettings,
    SetPaypalSettings,
    SubmitIpn,
)
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import EventStore
from shared.ids import new_id

from customer.application.settings import FieldSettings
from customer.domain import events as ev

log = structlog.get_logger(__name__)

PAYPAL_STREAM = "paypal"


class PaypalSettingsService(FieldSettings[PaypalSettings]):
    """The PayPal settings (stream `paypal`), changed by PaypalSettingsChanged events."""

    def __init__(self, store: EventStore, ttl_s: float = 1.0) -> None:
        super().__init__(
            store, stream_id=PAYPAL_STREAM, model=PaypalSettings, what="PayPal settings", ttl_s=ttl_s,
            event=lambda changes: ev.PaypalSettingsChanged(changes=changes),
        )

    async def set(self, cmd: SetPaypalSettings) -> bytes:
        """Change the settings to the command's values."""
        return await self.change(cmd, cmd.meta)


def parse_ipn(body: bytes) -> dict[str, str]:
    """An IPN's fields, decoded with the charset it names (PayPal's default: windows-1252)."""
    text = body.decode("latin-1")
    first = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="latin-1"))
    charset = first.get("charset") or "windows-1252"
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset))
    except LookupError:  # a charset Python does not know
        return first


def summary(fields: dict[str, str]) -> dict[str, Any]:
    """The columns of the payment log an IPN fills in (before it is verified)."""
    return {
        "txn_id": fields.get("txn_id") or None,
        "payment_status": fields.get("payment_status") or None,
        "amount": fields.get("mc_gross") or None,
        "currency": (fields.get("mc_currency") or "").upper() or None,
        "receiver_email": fields.get("receiver_email") or None,
        "payer_email": fields.get("payer_email") or None,
    }


class IpnInbox:
    """Stores each IPN as received; the worker is woken to verify it."""

    def __init__(self, pool: asyncpg.Pool, wake: asyncio.Event | None = None) -> None:
        self.pool = pool
        self.wake = wake or asyncio.Event()

    async def submit(self, ipn: SubmitIpn) -> bytes:
        """Keep the raw IPN (a malformed one is logged as such, never verified)."""
        try:
            body = base64.b64decode(ipn.body_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ServiceError(ErrorCode.VALIDATION, "body_b64 is not base64") from None
        ipn_id = new_id()
        outcome, reason, cols = (
            "pending",
            None,
            dict.fromkeys(
                ("txn_id", "payment_status", "amount", "currency", "receiver_email", "payer_email")
            ),
        )
        try:
            cols = summary(parse_ipn(body))
        except ValueError as exc:
            outcome, reason = "malformed", f"not a form-encoded IPN body: {exc}"
        if outcome == "pending" and cols["txn_id"] is None:
            outcome, reason = "ignored", "no txn_id: not a payment notification"
        await self.pool.execute(
            "INSERT INTO ipn_log (id, received_at, body, remote_addr, txn_id, payment_status, amount,"
            " currency, receiver_email, payer_email, outcome, reason, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $2)",
            ipn_id,
            ipn.received_at,
            body,
            ipn.remote_addr,
            cols["txn_id"],
            cols["payment_status"],
            cols["amount"],
            cols["currency"],
            cols["receiver_email"],
            cols["payer_email"],
            outcome,
            reason,
        )
        log.info("ipn_received", ipn_id=str(ipn_id), txn_id=cols["txn_id"], outcome=outcome, reason=reason)
        if outcome == "pending":
            self.wake.set()
        return orjson.dumps({"ipn_id": str(ipn_id)})

    async def log_page(self, query: IpnLogQuery) -> bytes:
        """The payment log, newest first, optionally for one customer or one txn_id."""
        where: list[str] = []
        args: list[object] = []
        if query.customer_id is not None:
            args.append(query.customer_id)
            where.append(f"customer_id = ${len(args)}")
        if query.txn_id is not None:
            args.append(query.txn_id)
            where.append(f"txn_id = ${len(args)}")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        offset = int(query.cursor) if query.cursor and query.cursor.isdigit() else 0
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval(f"SELECT count(*) FROM ipn_log {clause}", *args)
            rows = await conn.fetch(
                f"SELECT {LOG_COLUMNS} FROM ipn_log {clause} ORDER BY received_at DESC, id DESC"
                f" LIMIT {query.limit} OFFSET {offset}",
                *args,
            )
        items = [_entry(r) for r in rows]
        nxt = str(offset + len(items)) if offset + len(items) < total else None
        return orjson.dumps({"items": items, "next_cursor": nxt, "total": total})


LOG_COLUMNS = (
    "id, received_at, txn_id, payment_status, amount, currency, receiver_email, payer_email,"
    " customer_id, payment_id, verification, outcome, reason, attempts, updated_at"
)


def _entry(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("id", "customer_id", "payment_id"):
        out[key] = str(out[key]) if out[key] is not None else None
    for key in ("received_at", "updated_at"):
        out[key] = out[key].isoformat() if isinstance(out[key], datetime) else out[key]
    return out


__all__ = ["DEFAULT_VERIFY_URL", "IpnInbox", "PaypalSettingsService", "parse_ipn"]
