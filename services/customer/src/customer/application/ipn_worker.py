"""Verifies stored PayPal IPNs with PayPal and records the payments they announce.

Each pending IPN is claimed (its next attempt moved `claim_s` ahead, so another replica leaves
it alone), posted back as `cmd=_notify-validate&` + the original bytes, and then:
- `VERIFIED`, `payment_status=Completed`, our `receiver_email`, the customer's currency:
  one payment (method paypal, reference = txn_id, fee = mc_fee), whatever PayPal retries;
- anything else: the reason in the payment log, no payment;
- no answer (an error, a timeout, a strange reply): tried again later with a growing delay,
  and given up (`verify_failed`) after `max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import asyncpg
import orjson
import structlog
from pydantic import ValidationError
from shared.contracts.customer import CommandMeta
from shared.contracts.payments import PaymentIn
from shared.envelope import Actor
from shared.errors import ErrorCode

from customer.application.commands import CustomerCommands
from customer.application.payments import RecordPaymentCmd
from customer.application.paypal import IpnInbox, PaypalSettingsService, parse_ipn

log = structlog.get_logger(__name__)

VERIFY_PREFIX = b"cmd=_notify-validate&"
PAYPAL = Actor(kind="system", name="paypal-ipn")


class Outcome(Exception):
    """The IPN's final outcome (not a payment, or refused), with the reason."""

    def __init__(self, outcome: str, reason: str, **columns: Any) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.columns = outcome, reason, columns


class IpnWorker:
    """Works through pending IPNs until cancelled; woken by the inbox, polls as a fallback."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        inbox: IpnInbox,
        settings: PaypalSettingsService,
        commands: CustomerCommands,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 8,
        retry_base_s: float = 5.0,
        claim_s: float = 120.0,
        poll_s: float = 5.0,
    ) -> None:
        self.pool, self.inbox, self.settings, self.commands = pool, inbox, settings, commands
        self.timeout_s, self.max_attempts = timeout_s, max_attempts
        self.retry_base_s, self.claim_s, self.poll_s = retry_base_s, claim_s, poll_s

    async def run(self) -> None:
        """Claim and process pending IPNs, a few at a time."""
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    rows = await self._claim()
                except Exception as exc:  # the database is away: try again soon
                    log.warning("ipn_claim_failed", error=str(exc))
                    rows = []
                if rows:
                    await asyncio.gather(*[self._process(http, r) for r in rows])
                    continue
                self.inbox.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.inbox.wake.wait(), await self._until_due())

    async def _until_due(self) -> float:
        """Seconds until the next retry is due (at most `poll_s`)."""
        try:
            due = await self.pool.fetchval(
                "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM ipn_log"
                " WHERE outcome = 'pending'"
            )
        except Exception:
            return self.poll_s
        return self.poll_s if due is None else min(self.poll_s, max(0.01, float(due)))

    async def _claim(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "UPDATE ipn_log SET attempts = attempts + 1, updated_at = now(),"
            " next_attempt_at = now() + make_interval(secs => $1)"
            " WHERE id IN (SELECT id FROM ipn_log WHERE outcome = 'pending' AND next_attempt_at <= now()"
            "  ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, body, attempts",
            self.claim_s,
        )
        return rows

    async def _process(self, http: aiohttp.ClientSession, row: asyncpg.Record) -> None:
        ipn_id, body, attempts = row["id"], bytes(row["body"]), row["attempts"]
        try:
            settings, _ = await self.settings.current()
            if not settings.enabled:
                raise Outcome("disabled", "PayPal is not enabled (PUT /v1/settings/paypal)")
            verdict = await self._verify(http, settings.verify_url, body)
            if verdict is None:
                await self._retry(ipn_id, attempts, "PayPal's verify endpoint did not answer")
                return
            if verdict != "VERIFIED":
                raise Outcome(
                    "invalid", f"PayPal answered {verdict}: not a genuine IPN", verification=verdict
                )
            outcome, reason, columns = await self._apply(parse_ipn(body), settings.receiver_email)
            columns["verification"] = "VERIFIED"
        except Outcome as done:
            outcome, reason, columns = done.outcome, done.reason, done.columns
        except _Retry as again:
            await self._retry(ipn_id, attempts, str(again))
            return
        await self._finish(ipn_id, outcome, reason, columns)

    async def _verify(self, http: aiohttp.ClientSession, url: str, body: bytes) -> str | None:
        """PayPal's word on the IPN: VERIFIED, INVALID, or None when it gave none."""
        try:
            async with http.post(
                url,
                data=VERIFY_PREFIX + body,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "Patchbay-IPN-Verifier",
                },
            ) as resp:
                text = (await resp.text(errors="replace")).strip()
                if resp.status != 200:
                    log.warning("ipn_verify_http_error", status=resp.status)
                    return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("ipn_verify_failed", error=type(exc).__name__, detail=str(exc))
            return None
        return text if text in ("VERIFIED", "INVALID") else None

    async def _apply(
        self, fields: dict[str, str], receiver: str | None
    ) -> tuple[str, str | None, dict[str, Any]]:
        status = fields.get("payment_status", "")
        if status != "Completed":
            raise Outcome("not_completed", f"payment_status is {status or 'missing'}, not Completed")
        if (fields.get("receiver_email") or "").lower() != (receiver or "").lower():
            raise Outcome("receiver_mismatch", "receiver_email is not the one in the PayPal settings")
        customer = await self._customer(fields)
        columns: dict[str, Any] = {"customer_id": customer["id"]}
        if customer["deleted"]:
            raise Outcome("customer_deleted", "the customer was deleted", **columns)
        currency = (fields.get("mc_currency") or "").upper()
        if currency != customer["currency"]:
            raise Outcome(
                "currency_mismatch",
                f"paid in {currency or 'no currency'}, the customer's ledger is in {customer['currency']}",
                **columns,
            )
        try:
            payment = PaymentIn(
                kind="payment",
                amount=_money(fields.get("mc_gross")),
                currency=currency,
                method="paypal",
                reference=fields["txn_id"],
                status="completed",
                fee=_money(fields["mc_fee"]) if fields.get("mc_fee") else None,
                description=f"PayPal {fields.get('item_name') or 'payment'}"[:200],
            )
        except (ValidationError, KeyError, InvalidOperation) as exc:
            raise Outcome("malformed", f"not a payment PayPal could send: {exc}"[:500], **columns) from None
        known = await self.pool.fetchval(
            "SELECT id FROM payments WHERE customer_id = $1 AND reference = $2",
            customer["id"],
            payment.reference,
        )
        if known is not None:
            raise Outcome("duplicate", "this txn_id is already recorded", payment_id=known, **columns)
        cmd = RecordPaymentCmd(
            customer_id=str(customer["id"]),
            meta=CommandMeta(actor=PAYPAL, reason="PayPal IPN"),
            payment=payment,
            source="paypal",
            received_at=datetime.now(UTC),
            payer_email=fields.get("payer_email") or None,
            self_service=True,
        )
        reply = orjson.loads(await self.commands.handle(cmd))
        if "error" in reply:
            code = reply["error"]["code"]
            reused = any(d.get("type") == "reference_reused" for d in reply["error"].get("details") or [])
            if code == ErrorCode.UNAVAILABLE or (code == ErrorCode.CONFLICT and not reused):
                raise _Retry(reply["error"]["message"])
            raise Outcome("refused", reply["error"]["message"], **columns)
        columns["payment_id"] = uuid.UUID(reply["id"])
        if reply.get("below_minimum"):
            log.warning(
                "payment_below_minimum",
                customer_id=str(customer["id"]),
                amount=reply["amount"],
                currency=currency,
                txn_id=payment.reference,
                alert=True,
            )
            return (
                "below_minimum",
                "recorded; below the customer's minimum_payment (operators alerted)",
                columns,
            )
        return "recorded", None, columns

    async def _customer(self, fields: dict[str, str]) -> asyncpg.Record:
        custom = (fields.get("custom") or "").strip()
        with contextlib.suppress(ValueError):
            row = await self.pool.fetchrow(
                "SELECT id, deleted, currency FROM customers WHERE id = $1", uuid.UUID(custom)
            )
            if row is not None:
                return row
        payer = (fields.get("payer_email") or "").strip().lower()
        if payer:
            row = await self.pool.fetchrow(
                "SELECT id, deleted, currency FROM customers WHERE lower(paypal_email) = $1"
                " ORDER BY deleted, created_at DESC LIMIT 1",
                payer,
            )
            if row is not None:
                return row
        raise Outcome("customer_not_found", "no card has this id in `custom` or this paypal_email")

    async def _retry(self, ipn_id: uuid.UUID, attempts: int, reason: str) -> None:
        if attempts >= self.max_attempts:
            await self._finish(ipn_id, "verify_failed", f"{reason} ({attempts} attempts)", {})
            return
        delay = self.retry_base_s * 2 ** (attempts - 1)
        await self.pool.execute(
            "UPDATE ipn_log SET reason = $2, next_attempt_at = $3, updated_at = now() WHERE id = $1",
            ipn_id,
            f"{reason}; attempt {attempts}, next in {delay:g} s",
            datetime.now(UTC) + timedelta(seconds=delay),
        )

    async def _finish(
        self, ipn_id: uuid.UUID, outcome: str, reason: str | None, columns: dict[str, Any]
    ) -> None:
        await self.pool.execute(
            "UPDATE ipn_log SET outcome = $2, reason = $3, customer_id = coalesce($4, customer_id),"
            " payment_id = coalesce($5, payment_id), verification = coalesce($6, verification),"
            " updated_at = now() WHERE id = $1",
            ipn_id,
            outcome,
            reason,
            columns.get("customer_id"),
            columns.get("payment_id"),
            columns.get("verification"),
        )
        log.info("ipn_done", ipn_id=str(ipn_id), outcome=outcome, reason=reason)


class _Retry(Exception):
    """Try this IPN again later."""


def _money(text: str | None) -> Decimal:
    if not text:
        raise InvalidOperation("no amount")
    return Decimal(text.strip())
