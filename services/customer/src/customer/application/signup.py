"""Self-service sign-up: its settings (an aggregate of their own) and the sign-up itself.

A sign-up makes a customer in `pending_approval` (tag `signup`) with one contact whose password
the applicant chose; an operator approves (active) or rejects (inactive) it. A known e-mail
makes nothing, and the caller cannot tell (the gateway answers alike): the outcome says so to
the gateway only. A company name that is taken gets a suffix, so a sign-up never reveals which
names exist either.
"""

from __future__ import annotations

import asyncpg
import orjson
import structlog
from shared.contracts.contacts import AddContact, ContactCreate
from shared.contracts.customer import CommandMeta, CreateCustomer, CustomerCreate, DeleteCustomer
from shared.contracts.events.signup import SignupSettingsChanged
from shared.contracts.signup import SetSignupSettings, SignupOutcome, SignupSettings, SubmitSignup
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import EventStore
from shared.ids import new_id

from customer.application.commands import CustomerCommands
from customer.application.contacts import ContactService
from customer.application.settings import FieldSettings

log = structlog.get_logger(__name__)

SIGNUP_STREAM = "signup"


class SignupSettingsService(FieldSettings[SignupSettings]):
    """The sign-up settings (stream `signup`), changed by SignupSettingsChanged events."""

    def __init__(self, store: EventStore, ttl_s: float = 1.0) -> None:
        super().__init__(
            store, stream_id=SIGNUP_STREAM, model=SignupSettings, what="sign-up settings", ttl_s=ttl_s,
            event=lambda changes: SignupSettingsChanged.model_validate({"changes": changes}),
        )

    async def set(self, cmd: SetSignupSettings) -> bytes:
        """Change the settings to the command's values."""
        return await self.change(cmd, cmd.meta)


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
