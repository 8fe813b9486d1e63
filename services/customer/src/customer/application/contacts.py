"""Contact requests: passwords generated or checked, hashed and sealed here, then batched as commands."""

from __future__ import annotations

from typing import Any

import asyncpg
from shared.contracts.contacts import (
    AddContact,
    ChangeApprovedCli,
    RemoveContact,
    SetContactPassword,
    UpdateContact,
)
from shared.contracts.notify import SystemMessage, Template
from shared.contracts.portal import ChangeOwnPassword
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.idempotency import fingerprint
from shared.ids import new_id
from shared.secrets import Sealer

from customer.application.commands import CustomerCommands
from customer.application.contact_commands import (
    AddContactCmd,
    ApprovedCliCmd,
    NewPassword,
    RemoveContactCmd,
    SetPasswordCmd,
    UpdateContactCmd,
)
from customer.application.passwords import Passwords, contains, generate_password
from customer.domain.state import CustomerState


class ContactService:
    """Handles contact and approved-CLI requests; every change goes through the batching core."""

    def __init__(
        self, commands: CustomerCommands, pool: asyncpg.Pool, passwords: Passwords,
        sealer: Sealer | None, portal_url: str,
    ) -> None:
        self.commands = commands
        self.pool = pool
        self.passwords = passwords
        self.sealer = sealer
        self.portal_url = portal_url

    async def add(self, req: AddContact) -> bytes:
        """Add a contact with a generated (and sent) or operator-typed password."""
        contact_id = str(new_id())
        fields = req.contact.model_dump(mode="json")
        state = await self._state(str(req.customer_id))
        password = await self._new_password(
            req.password.get_secret_value() if req.password else None, "contact_password",
            state, contact_id, fields["email"], fields["name"],
        )
        # the command's contact id and password hash are new on every retry: the request counts
        return await self.commands.handle(AddContactCmd(
            customer_id=str(req.customer_id), meta=req.meta, contact_id=contact_id, fields=fields,
            password=password, expected_version=req.expected_version,
        ), request_fingerprint=fingerprint(req))

    async def update(self, req: UpdateContact) -> bytes:
        """Change fields; new notes are refused when they hold the contact's password."""
        given = req.changes.model_dump(mode="json", include=req.changes.model_fields_set)
        notes = [str(given[k]) for k in ("public_notes", "private_notes") if given.get(k)]
        if notes and await self.passwords.notes_contain(await self._hash(str(req.contact_id)), *notes):
            raise ServiceError(
                ErrorCode.PASSWORD_IN_NOTES,
                "the notes contain the contact's password; never keep passwords in notes",
                [ErrorDetail(field="notes", message="contains the contact's password")],
            )
        return await self.commands.handle(UpdateContactCmd(
            customer_id=str(req.customer_id), meta=req.meta, contact_id=str(req.contact_id),
            given=given, expected_version=req.expected_version,
        ))

    async def remove(self, req: RemoveContact) -> bytes:
        """Remove a contact; its e-mail becomes free and its password is forgotten."""
        return await self.commands.handle(RemoveContactCmd(
            customer_id=str(req.customer_id), meta=req.meta, contact_id=str(req.contact_id),
            expected_version=req.expected_version,
        ))

    async def set_password(self, req: SetContactPassword) -> bytes:
        """Reset a password: generated and sent, or typed by the operator."""
        state = await self._state(str(req.customer_id))
        contact = _contact(state, str(req.contact_id))
        password = await self._new_password(
            req.password.get_secret_value() if req.password else None, "password_reset",
            state, str(req.contact_id), contact["email"] if contact else "",
            contact["name"] if contact else "",
        )
        return await self.commands.handle(SetPasswordCmd(
            customer_id=str(req.customer_id), meta=req.meta, contact_id=str(req.contact_id),
            password=password,
        ), request_fingerprint=fingerprint(req))

    async def change_own_password(self, req: ChangeOwnPassword) -> bytes:
        """A portal contact changes its password: the current one first (a wrong one is refused)."""
        current = await self._hash(str(req.contact_id))
        if not await self.passwords.verify(current, req.current_password.get_secret_value()):
            raise ServiceError(ErrorCode.VALIDATION, "the current password is wrong", [ErrorDetail(
                field="current_password", type="wrong_password", message="the current password is wrong")])
        typed = req.new_password.get_secret_value()
        password = NewPassword("contact", await self.passwords.hash(typed),
                               contains_password=lambda text: contains(text, typed))
        return await self.commands.handle(SetPasswordCmd(
            customer_id=str(req.customer_id), meta=req.meta, contact_id=str(req.contact_id),
            password=password,
        ), request_fingerprint=fingerprint(req))

    async def approve_cli(self, req: ChangeApprovedCli) -> bytes:
        """An operator approves a CLI by hand (recorded as such)."""
        return await self._cli(req, approve=True)

    async def remove_cli(self, req: ChangeApprovedCli) -> bytes:
        """An operator takes a CLI off the approved list."""
        return await self._cli(req, approve=False)

    async def _cli(self, req: ChangeApprovedCli, *, approve: bool) -> bytes:
        return await self.commands.handle(ApprovedCliCmd(
            customer_id=str(req.customer_id), meta=req.meta, number=req.number, approve=approve,
            expected_version=req.expected_version,
        ))

    async def _state(self, customer_id: str) -> CustomerState | None:
        await self.commands.cache.ensure([customer_id])
        return self.commands.cache.get(customer_id)

    async def _hash(self, contact_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT hash FROM contact_passwords WHERE contact_id = $1::uuid", contact_id
        )
        return str(value) if value is not None else None

    async def _new_password(
        self, typed: str | None, template: Template, state: CustomerState | None, contact_id: str,
        email: str, name: str,
    ) -> NewPassword:
        if typed is not None:
            return NewPassword(
                "operator", await self.passwords.hash(typed),
                contains_password=lambda text: contains(text, typed),
            )
        if self.sealer is None:
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                "generated passwords cannot be sent: PATCHBAY_SECRET_KEY is not set; type a password instead",
            )
        generated = generate_password()
        message = SystemMessage(
            notification_id=f"{template}:{contact_id}:{new_id()}", channel="email", template=template,
            to=email, customer_id=state.id if state else None, contact_id=contact_id,
            variables=_variables(state, name, email, self.portal_url),
            sealed_secret=self.sealer.seal(generated),
        )
        return NewPassword("generated", await self.passwords.hash(generated), notification=message)


def _contact(state: CustomerState | None, contact_id: str) -> dict[str, Any] | None:
    if state is None:
        return None
    return next((c for c in state.contacts if c["id"] == contact_id), None)


def _variables(state: CustomerState | None, name: str, email: str, portal_url: str) -> dict[str, str]:
    return {
        "contact_name": name, "login_email": email, "portal_url": portal_url,
        "customer_name": str(state.fields["name"]) if state else "",
    }
