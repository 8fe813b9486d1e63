"""The customer service's subjects for contacts, approved CLIs, the portal and dial permission."""

from __future__ import annotations

from typing import Any

from shared.contracts.contacts import (
    AddContact,
    ChangeApprovedCli,
    ContactSubjects,
    DialPermission,
    DialPermissionQuery,
    PortalLogin,
    PortalSession,
    PortalView,
    RemoveContact,
    SetContactPassword,
    UpdateContact,
)
from shared.contracts.customer import CustomerCard
from shared.contracts.portal import ChangeOwnPassword, PortalSubjects
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.application.contacts import ContactService
from customer.application.portal import PortalAccess


def contact_routes(*, contacts: ContactService, portal: PortalAccess) -> list[Route]:
    """Every contact, CLI and portal subject with its models and handler (replies: the card)."""

    def command(name: str) -> Any:
        async def run(body: Any) -> bytes:
            if body.meta.correlation_id is None:
                body.meta.correlation_id = current_correlation_id()
            return bytes(await getattr(contacts, name)(body))

        return run

    async def login(body: PortalLogin) -> bytes:
        return await portal.login(body)

    async def session(body: PortalSession) -> bytes:
        return await portal.session(body)

    s = ContactSubjects
    return [
        Route(s.ADD, AddContact, CustomerCard, command("add"),
              "Add a contact: a generated password is sent through NOTIFY (default), or the operator"
              " types one (12+ characters). The e-mail is unique across customers (email_taken)."),
        Route(s.UPDATE, UpdateContact, CustomerCard, command("update"),
              "Change fields of a contact; a new e-mail or mobile is unverified again."),
        Route(s.REMOVE, RemoveContact, CustomerCard, command("remove"), "Remove a contact."),
        Route(s.SET_PASSWORD, SetContactPassword, CustomerCard, command("set_password"),
              "Reset a contact's password: generated and sent (default) or typed by the operator."),
        Route(PortalSubjects.CHANGE_PASSWORD, ChangeOwnPassword, CustomerCard, command("change_own_password"),
              "A portal contact changes its own password (the current one first); sessions begun"
              " before it end."),
        Route(s.APPROVE_CLI, ChangeApprovedCli, CustomerCard, command("approve_cli"),
              "An operator approves a CLI by hand (recorded as such)."),
        Route(s.REMOVE_CLI, ChangeApprovedCli, CustomerCard, command("remove_cli"),
              "An operator removes an approved CLI."),
        Route(s.PORTAL_LOGIN, PortalLogin, PortalView, login,
              "Check a contact's e-mail and password and the portal rules (portal_access, status,"
              " IP whitelist); answer what the portal shows. The gateway signs the session."),
        Route(s.PORTAL_SESSION, PortalSession, PortalView, session,
              "Check that a portal session may still act (contact exists, portal rules hold)."),
    ]


async def _not_served_here(body: Any) -> bytes:
    raise NotImplementedError  # dial_api.DialPermissionApi answers this subject from memory


DIAL_ROUTE = Route(
    ContactSubjects.DIAL_PERMISSION, DialPermissionQuery, DialPermission, _not_served_here,
    "May this customer start a call now (optionally with this CLI)? Every reason: not_found, deleted,"
    " inactive, pending_approval, penalty, email_unverified, mobile_unverified, cli_not_approved;"
    " plus the limits the switch enforces. Answered from memory kept current from events.",
)
