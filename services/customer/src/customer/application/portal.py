"""Portal access: a contact's login, and the check every portal request makes again.

Answers from the read model (the `customers` card and `contacts` rows), which commit with the
events, so a replica never lets in a contact whose access another replica just took away.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import asyncpg
import structlog
from shared.contracts.contacts import PortalLogin, PortalSession, portal_view
from shared.errors import ErrorCode, ServiceError
from shared.rpc import dumps

from customer.application.passwords import Passwords

log = structlog.get_logger(__name__)

WRONG_LOGIN = "wrong e-mail or password"


def ip_allowed(whitelist: list[str], ip: str | None) -> bool:
    """An empty whitelist lets any address in; otherwise the address must be in one of the blocks."""
    if not whitelist:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(block) for block in whitelist)


def check_access(
    card: dict[str, Any] | None, deleted: bool, contact_id: str, ip: str | None
) -> dict[str, Any]:
    """The contact, if this customer's portal lets it in from this address; else why not."""
    contact = next((c for c in (card or {}).get("contacts", []) if c["id"] == contact_id), None)
    if card is None or contact is None:
        raise ServiceError(ErrorCode.UNAUTHENTICATED, "the contact no longer exists; log in again")
    if deleted:
        raise ServiceError(ErrorCode.FORBIDDEN, "the customer was deleted")
    if card["status"] == "inactive":
        raise ServiceError(ErrorCode.FORBIDDEN, "the customer is inactive")
    if not card["portal_access"]:
        raise ServiceError(ErrorCode.FORBIDDEN, "portal access is turned off for this customer")
    if not ip_allowed(contact["ip_whitelist"], ip):
        raise ServiceError(ErrorCode.FORBIDDEN, "this address is not in the contact's IP whitelist")
    return dict(contact)


class PortalAccess:
    """Login and session checks for the portal."""

    def __init__(self, pool: asyncpg.Pool, passwords: Passwords) -> None:
        self.pool = pool
        self.passwords = passwords

    async def login(self, req: PortalLogin) -> bytes:
        """Check e-mail and password, then the customer's portal rules; answer the portal view."""
        row = await self.pool.fetchrow(
            "SELECT c.id::text AS contact_id, c.customer_id, p.hash FROM contacts c"
            " LEFT JOIN contact_passwords p ON p.contact_id = c.id"
            " WHERE lower(c.email) = lower($1) AND NOT c.removed",
            req.email,
        )
        hashed = row["hash"] if row else None
        if not await self.passwords.verify(hashed, req.password.get_secret_value()) or row is None:
            log.info("portal_login_refused", reason="credentials")
            raise ServiceError(ErrorCode.UNAUTHENTICATED, WRONG_LOGIN)
        view = await self._view(row["customer_id"], row["contact_id"], req.ip)
        log.info("portal_login", contact_id=row["contact_id"], customer_id=str(row["customer_id"]))
        return view

    async def session(self, req: PortalSession) -> bytes:
        """A session is still good: the contact exists, belongs to the customer, may still get in."""
        if req.issued_at is not None:
            set_at = await self.pool.fetchval(
                "SELECT set_at FROM contact_passwords WHERE contact_id = $1", req.contact_id
            )
            if set_at is not None and set_at > req.issued_at:
                raise ServiceError(ErrorCode.UNAUTHENTICATED, "the password was changed; log in again")
        return await self._view(req.customer_id, str(req.contact_id), req.ip)

    async def _view(self, customer_id: Any, contact_id: str, ip: str | None) -> bytes:
        row = await self.pool.fetchrow(
            "SELECT card::text AS card, deleted FROM customers WHERE id = $1", customer_id
        )
        card = json.loads(row["card"]) if row else None
        try:
            contact = check_access(card, bool(row and row["deleted"]), contact_id, ip)
        except ServiceError as err:
            log.info("portal_access_refused", contact_id=contact_id, reason=err.message)
            raise
        assert card is not None
        return dumps(portal_view(card, contact))
