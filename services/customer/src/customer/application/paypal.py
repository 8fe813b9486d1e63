"""PayPal: its settings (an aggregate of their own) and the IPN inbox (the payment log).

An IPN is stored, raw, before anything else happens to it (`ipn_log`, outcome `pending`);
the gateway answers PayPal 200 once it is stored. `ipn_worker.IpnWorker` verifies and
applies it later, so a restart resumes what was pending.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
import structlog
from shared.contracts.customer import CommandMeta
from shared.contracts.events import REGISTRY
from shared.contracts.payments import (
    DEFAULT_VERIFY_URL,
    IpnLogQuery,
    PaypalSettings,
    SetPaypalSettings,
    SubmitIpn,
)
from shared.envelope import EventEnvelope, Metadata
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import ConcurrencyError, EventStore
from shared.ids import new_id

from customer.domain import events as ev

log = structlog.get_logger(__name__)

PAYPAL_STREAM = "paypal"
FIELDS = ("enabled", "receiver_email", "verify_url")


def fold_settings(events: list[EventEnvelope]) -> tuple[PaypalSettings, int]:
    """The settings and their version from the stream's events."""
    values: dict[str, Any] = PaypalSettings().model_dump()
    version = 0
    for event in events:
        values |= {k: v["new"] for k, v in event.data["changes"].items()}
        version = event.version
    return PaypalSettings.model_validate(values), version


class PaypalSettingsService:
    """The PayPal settings, cached for `ttl_s`; changed by PaypalSettingsChanged events."""

    def __init__(self, store: EventStore, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cached: tuple[PaypalSettings, int] = (PaypalSettings(), 0)
        self._loaded_at = float("-inf")

    async def current(self) -> tuple[PaypalSettings, int]:
        """Settings and version, re-read when the cached copy is older than the TTL."""
        if time.monotonic() - self._loaded_at > self.ttl_s:
            events = (await self.store.load([PAYPAL_STREAM]))[PAYPAL_STREAM]
            self._cached, self._loaded_at = fold_settings(events), time.monotonic()
        return self._cached

    async def reply(self) -> bytes:
        """The settings as JSON."""
        settings, version = await self.current()
        return orjson.dumps({**settings.model_dump(mode="json"), "version": version})

    async def set(self, cmd: SetPaypalSettings) -> bytes:
        """Change the settings (only the fields that differ make the event)."""
        new = PaypalSettings.model_validate(cmd.model_dump(include=set(FIELDS)))
        for _ in range(5):
            self._loaded_at = float("-inf")
            old, version = await self.current()
            changes = {
                k: {"old": getattr(old, k), "new": getattr(new, k)}
                for k in FIELDS
                if getattr(old, k) != getattr(new, k)
            }
            if not changes:
                return await self.reply()
            envelope = REGISTRY.envelope(
                ev.PaypalSettingsChanged(changes=changes),
                category=ev.SETTINGS_CATEGORY,
                stream_id=PAYPAL_STREAM,
                version=version + 1,
                metadata=_metadata(cmd.meta),
            )
            try:
                await self.store.append([envelope])
            except ConcurrencyError:
                continue
            self._cached, self._loaded_at = (new, version + 1), time.monotonic()
            return await self.reply()
        raise ServiceError(ErrorCode.CONFLICT, "the PayPal settings changed concurrently; retry")


def _metadata(meta: CommandMeta) -> Metadata:
    return Metadata(
        actor=meta.actor, command_id=meta.command_id, correlation_id=meta.correlation_id, reason=meta.reason
    )


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
