"""E-mail and SMS settings: secrets sealed at rest, write-only, never in an event; test messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from shared.contracts.events import REGISTRY
from shared.contracts.events.notification import (
    ChannelSettingsChanged,
    EmailSettingsChanged,
    SmsSettingsChanged,
)
from shared.contracts.notifier import (
    EmailSettings,
    EmailSettingsIn,
    SmsSettings,
    SmsSettingsIn,
    TestResult,
    settings_payload,
)
from shared.envelope import Metadata
from shared.errors import ErrorCode, ServiceError
from shared.eventstore import ConcurrencyError, EventStore, Fragment
from shared.ids import new_id
from shared.secrets import Sealer

from notifier.adapters.sms_sender import SmsConfig, TwilioSender
from notifier.adapters.smtp_sender import Email, SmtpConfig, SmtpSender
from notifier.application.settings_guard import (
    check_api_base_url,
    public_reason,
    require_secret_for_new_destination,
)
from notifier.domain.delivery import CATEGORY
from notifier.domain.retry import Outcome, OutcomeKind

_UPSERT = (
    "INSERT INTO channel_settings (channel, data, sealed_secret, version, updated_at)"
    " VALUES ({}, {}::jsonb, {}, {}, {}) ON CONFLICT (channel) DO UPDATE SET data = EXCLUDED.data,"
    " sealed_secret = EXCLUDED.sealed_secret, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at"
)
# new settings are tried at once: the channel's deliveries waiting out a back-off become due (the
# trigger of migration 0004 then wakes the workers of every replica)
_DUE_NOW = (
    "UPDATE deliveries SET next_attempt_at = now(), updated_at = now()"
    " WHERE channel = {} AND state = 'queued' AND next_attempt_at > now()"
)
_LOCK = "SELECT 1 FROM channel_settings WHERE channel = $1 FOR UPDATE"
_EVENT_TYPES: dict[str, type[ChannelSettingsChanged]] = {
    "email": EmailSettingsChanged, "sms": SmsSettingsChanged,
}


def _result(outcome: Outcome, channel: str) -> TestResult:
    return TestResult(
        delivered=outcome.kind is OutcomeKind.SENT,
        provider_id=outcome.provider_id,
        reason=public_reason(outcome, channel),
        permanent=outcome.kind is OutcomeKind.PERMANENT,
    )


class ChannelSettings:
    """Reads and writes `channel_settings`; builds provider configs with the secret unsealed."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        events: EventStore,
        sealer: Sealer,
        *,
        validate_certs: bool = True,
        ca_file: str | None = None,
        allow_insecure: bool = False,
        timeout_s: float = 30.0,
    ) -> None:
        self.pool = pool
        self.events = events
        self.sealer = sealer
        self.validate_certs = validate_certs
        self.ca_file = ca_file
        self.allow_insecure = allow_insecure  # plain-http provider APIs (local test doubles only)
        self.timeout_s = timeout_s  # of a provider's answer

    async def _row(self, channel: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            "SELECT data, sealed_secret, version, updated_at FROM channel_settings WHERE channel = $1",
            channel,
        )

    async def email(self) -> EmailSettings:
        """The e-mail settings as the API shows them (no password)."""
        row = await self._row("email")
        if row is None:
            return EmailSettings()
        return EmailSettings(
            **json.loads(row["data"]),
            smtp_password_set=row["sealed_secret"] is not None,
            version=row["version"],
            updated_at=row["updated_at"],
        )

    async def sms(self) -> SmsSettings:
        """The SMS settings as the API shows them (no auth token)."""
        row = await self._row("sms")
        if row is None:
            return SmsSettings()
        return SmsSettings(
            **json.loads(row["data"]),
            auth_token_set=row["sealed_secret"] is not None,
            version=row["version"],
            updated_at=row["updated_at"],
        )

    async def set_email(self, body: EmailSettingsIn) -> EmailSettings:
        """Replace the e-mail settings (the password is kept when omitted)."""
        await self._write("email", body, body.smtp_password)
        return await self.email()

    async def set_sms(self, body: SmsSettingsIn) -> SmsSettings:
        """Replace the SMS settings (the auth token is kept when omitted)."""
        check_api_base_url(body.api_base_url, allow_insecure=self.allow_insecure)
        await self._write("sms", body, body.auth_token)
        return await self.sms()

    async def _write(self, channel: str, body: EmailSettingsIn | SmsSettingsIn, secret: str | None) -> None:
        row = await self._row(channel)
        version = row["version"] if row else 0
        if body.expected_version is not None and body.expected_version != version:
            raise ServiceError(
                ErrorCode.VERSION_MISMATCH,
                f"the {channel} settings are at version {version}, not {body.expected_version}",
            )
        sealed = row["sealed_secret"] if row else None
        secret_changed = secret is not None
        data = settings_payload(body)
        require_secret_for_new_destination(
            channel, json.loads(row["data"]) if row else None, data, sealed is not None, secret_changed
        )
        if secret is not None:
            sealed = self.sealer.seal(secret) if secret else None
        now = datetime.now(UTC)
        meta = body.meta
        # the secret itself: never
        changed = _EVENT_TYPES[channel](settings=data, secret_changed=secret_changed)
        event = REGISTRY.envelope(
            changed,
            category=CATEGORY,
            stream_id=f"settings-{channel}",
            version=version + 1,
            metadata=Metadata(
                actor=meta.actor,
                correlation_id=meta.correlation_id,
                command_id=meta.command_id,
                reason=meta.reason,
            ),
        )
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # the row locked before the write's snapshot: a delivery recorded meanwhile (it reads
                # the row FOR SHARE) is committed first and then made due by _DUE_NOW below
                await conn.execute(_LOCK, channel)
                await self.events.append(
                    [event], conn=conn,
                    fragments=[Fragment(_UPSERT, [channel, json.dumps(data), sealed, version + 1, now]),
                               Fragment(_DUE_NOW, [channel])],
                )
        except ConcurrencyError:
            raise ServiceError(
                ErrorCode.VERSION_MISMATCH,
                f"the {channel} settings changed meanwhile; read them and try again",
            ) from None

    async def version(self, channel: str) -> int | None:
        """The channel's settings version alone (nothing opened); None when unset."""
        version: int | None = await self.pool.fetchval(
            "SELECT version FROM channel_settings WHERE channel = $1", channel)
        return version

    async def smtp_config(self) -> tuple[SmtpConfig, int] | None:
        """The SMTP connection settings with the password opened, and their version; None when unset."""
        row = await self._row("email")
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row["data"])
        password = self.sealer.unseal(row["sealed_secret"]) if row["sealed_secret"] else None
        cfg = SmtpConfig(
            host=data["smtp_host"],
            port=data["smtp_port"],
            security=data["security"],
            from_address=data["from_address"],
            from_name=data.get("from_name") or "",
            username=data.get("smtp_username"),
            password=password,
            validate_certs=self.validate_certs,
            ca_file=self.ca_file,
            timeout_s=self.timeout_s,
        )
        return cfg, row["version"]

    async def sms_config(self) -> tuple[SmsConfig, int] | None:
        """The Twilio settings with the token opened, and their version; None when unset."""
        row = await self._row("sms")
        if row is None or row["sealed_secret"] is None:
            return None
        data: dict[str, Any] = json.loads(row["data"])
        cfg = SmsConfig(
            account_sid=data["account_sid"],
            auth_token=self.sealer.unseal(row["sealed_secret"]),
            from_number=data["from_number"],
            api_base_url=data["api_base_url"],
            timeout_s=self.timeout_s,
        )
        return cfg, row["version"]

    async def test_email(self, to: str) -> TestResult:
        """Send one e-mail now with the stored settings; answer what the server said."""
        found = await self.smtp_config()
        if found is None:
            raise ServiceError(ErrorCode.CONFLICT, "no e-mail settings yet: PUT /v1/settings/email first")
        sender = SmtpSender(found[0])
        try:
            outcome = await sender.send(
                Email(
                    to=to,
                    subject="Patchbay test e-mail",
                    body="This is a test e-mail from Patchbay: the e-mail settings work.\n",
                    message_key=f"test-{new_id()}",
                ),
                on_handover=lambda: None,
            )
        finally:
            await sender.close()
        return _result(outcome, "email")

    async def test_sms(self, to: str) -> TestResult:
        """Send one SMS now with the stored settings; answer what Twilio said."""
        found = await self.sms_config()
        if found is None:
            raise ServiceError(ErrorCode.CONFLICT, "no SMS settings yet: PUT /v1/settings/sms first")
        sender = TwilioSender(found[0])
        try:
            outcome = await sender.send(to, "Patchbay test SMS: the SMS settings work.", lambda: None)
        finally:
            await sender.close()
        return _result(outcome, "sms")
