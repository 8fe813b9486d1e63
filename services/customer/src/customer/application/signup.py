"""Self-service sign-up: its settings (an aggregate of their own) and the sign-up itself.

A sign-up makes a customer in `pending_approval` (tag `signup`) with one contact whose password
the applicant chose; an operator approves (active) or rejects (inactive) it. A known e-mail
makes nothing, and the caller cannot tell (the gateway answers alike): the outcome says so to
the gateway only. A company name that is taken gets a suffix, so a sign-up never reveals which
names exist either.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import orjson
import structlog
from shared.contracts.contacts import AddContact, ContactCreate
from shared.contracts.customer import CommandMeta, CreateCustomer, CustomerCreate, DeleteCustomer
from shared.contracts.events import REGISTRY
from shared.contracts.events.signup import SignupSettingsChanged
from shared.contracts.signup import SetSignupSettings, SignupOutcome, SignupSettings, SubmitSignup
from shared.envelope import EventEnvelope, Metadata
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import ConcurrencyError, EventStore
from shared.ids import new_id

from customer.application.commands import CustomerCommands
from customer.application.contacts import ContactService
from customer.domain import events as ev

log = structlog.get_logger(__name__)

SIGNUP_STREAM = "signup"
FIELDS = ("enabled", "currencies")


def fold(events: list[EventEnvelope]) -> tuple[SignupSettings, int]:
    """The settings and their version from the stream's events."""
    values: dict[str, Any] = SignupSettings().model_dump()
    version = 0
    for event in events:
        values |= {k: v["new"] for k, v in event.data["changes"].items()}
        version = event.version
    return SignupSettings.model_validate(values), version


class SignupSettingsService:
    """The sign-up settings, cached for `ttl_s`; changed by SignupSettingsChanged events."""

    def __init__(self, store: EventStore, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cached: tuple[SignupSettings, int] = (SignupSettings(), 0)
        self._loaded_at = float("-inf")

    async def current(self) -> tuple[SignupSettings, int]:
        """Settings and version, re-read when the cached copy is older than the TTL."""
        if time.monotonic() - self._loaded_at > self.ttl_s:
            events = (await self.store.load([SIGNUP_STREAM]))[SIGNUP_STREAM]
            self._cached, self._loaded_at = fold(events), time.monotonic()
        return self._cached

    async def reply(self) -> bytes:
        """The settings as JSON."""
        settings, version = await self.current()
        return orjson.dumps({**settings.model_dump(mode="json"), "version": version})

    async def set(self, cmd: SetSignupSettings) -> bytes:
        """Change the settings (only the fields that differ make the event)."""
        new = SignupSettings.model_validate(cmd.model_dump(include=set(FIELDS)))
        for _ in range(5):
            self._loaded_at = float("-inf")
            old, version = await self.current()
            changes = {k: {"old": getattr(old, k), "new": getattr(new, k)} for k in FIELDS
                       if getattr(old, k) != getattr(new, k)}
            if not changes:
                return await self.reply()
            meta = cmd.meta
            envelope = REGISTRY.envelope(
                SignupSettingsChanged.model_validate({"changes": changes}), category=ev.SETTINGS_CATEGORY,
                stream_id=SIGNUP_STREAM, version=version + 1,
                metadata=Metadata(actor=meta.actor, command_id=meta.command_id,
                                  correlation_id=meta.correlation_id, reason=meta.reason))
            try:
                await self.store.append([envelope])
            except ConcurrencyError:
                continue
            self._cached, self._loaded_at = (new, version + 1), time.monotonic()
            return await self.reply()
        raise ServiceError(ErrorCode.CONFLICT, "the sign-up settings changed concurrently; retry")


class Signups:
    """Makes a pending customer and its contact from a sign-up."""

    def __init__(self, commands: CustomerCommands, contacts: ContactService, pool: asyncpg.Pool,
                 settings: SignupSettingsService) -> None:
        self.commands = commands
        self.contacts = contacts
        self.pool = pool
        self.settings = settings

    async def submit(self, req: SubmitSignup) -> bytes:
        """A sign-up: not offered (404), a currency not offered (422), else the outcome."""
        settings, _ = await self.settings.current()
        if not settings.enabled:
            raise ServiceError(ErrorCode.NOT_FOUND, "sign-up is not offered")
        if req.currency not in settings.currencies:
            offered = ", ".join(settings.currencies)
            raise ServiceError(ErrorCode.VALIDATION, f"{req.currency} is not offered", [ErrorDetail(
                field="currency", type="currency_not_offered", message=f"one of {offered}")])
        known = "SELECT 1 FROM contacts WHERE lower(email) = lower($1) AND NOT removed"
        if await self.pool.fetchval(known, req.email):
            await self.contacts.passwords.hash(req.password.get_secret_value())  # the same time as a new one
            log.info("signup_refused", reason="email_known")
            return SignupOutcome(created=False).model_dump_json().encode()
        meta = CommandMeta(actor=req.meta.actor, correlation_id=req.meta.correlation_id, reason="sign-up")
        name = await self._free_name(req.company)
        card = orjson.loads(await self.commands.handle(CreateCustomer(meta=meta, customer=CustomerCreate(
            name=name, currency=req.currency, status="pending_approval", tags=["signup"]))))
        try:
            after = orjson.loads(await self.contacts.add(AddContact(
                meta=meta, customer_id=card["id"], password=req.password, auto_generate_password=False,
                contact=ContactCreate(name=req.contact_name, email=req.email, contact_type="general"))))
        except ServiceError as err:  # the e-mail was taken in between: undo, and answer alike
            await self.commands.handle(DeleteCustomer(meta=meta, customer_id=card["id"]))
            if err.code != ErrorCode.EMAIL_TAKEN:
                raise
            return SignupOutcome(created=False).model_dump_json().encode()
        contact = next(c for c in after["contacts"] if c["email"].lower() == req.email.lower())
        log.info("signup_created", customer_id=card["id"], contact_id=contact["id"])
        outcome = SignupOutcome(created=True, customer_id=card["id"], contact_id=contact["id"])
        return outcome.model_dump_json().encode()

    async def _free_name(self, company: str) -> str:
        taken = await self.pool.fetchval(
            "SELECT 1 FROM customers WHERE lower(name) = lower($1) AND NOT deleted", company)
        return f"{company[:100]} (sign-up {new_id().hex[-6:]})" if taken else company
