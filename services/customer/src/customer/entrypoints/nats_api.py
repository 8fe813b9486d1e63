"""The customer service's request/reply subjects: one route table, served and documented."""

from __future__ import annotations

from typing import Any

from shared.contracts.customer import (
    AsOfCard,
    AsOfQuery,
    AuditSettings,
    CreateCustomer,
    CustomerCard,
    CustomerPage,
    DeleteCustomer,
    GetAuditSettings,
    GetCustomer,
    ListCustomers,
    SetAuditSettings,
    SetStatus,
    Subjects,
    UpdateCustomer,
)
from shared.logging import current_correlation_id
from shared.rpc import Respond, Route, dumps

from customer.application.commands import CustomerCommands
from customer.application.queries import CustomerQueries
from customer.application.settings import SettingsService
from customer.entrypoints.bulk_api import bulk_routes
from customer.entrypoints.contacts_api import DIAL_ROUTE, contact_routes
from customer.entrypoints.number_blocks_api import number_block_routes
from customer.entrypoints.payments_api import payment_routes
from customer.entrypoints.privacy_api import privacy_routes

QUEUE = "customer"


def routes(
    *, commands: CustomerCommands, queries: CustomerQueries, settings: SettingsService
) -> list[Route]:
    """Every subject of the customer API with its models and handler."""

    def correlated(body: Any, correlation_id: str | None) -> Any:
        if body.meta.correlation_id is None:
            body.meta.correlation_id = correlation_id
        return body

    async def command(body: Any) -> bytes:  # the route's handler; its requests are queued (enqueue)
        return await commands.handle(correlated(body, current_correlation_id()))

    def enqueue(body: Any, respond: Respond) -> None:
        # the request's header, as the RPC server read it (not the log context's copy: ~3 µs)
        commands.submit(correlated(body, respond.correlation_id), respond)

    async def get_customer(body: GetCustomer) -> bytes:
        return await queries.get(body.customer_id)

    async def list_customers(body: ListCustomers) -> bytes:
        return await queries.list(body)

    async def as_of(body: AsOfQuery) -> bytes:
        return await queries.as_of(body)

    async def get_audit_settings(_: GetAuditSettings) -> bytes:
        state = await settings.current()
        return dumps({"require_reason": state.require_reason, "version": state.version})

    async def set_audit_settings(body: SetAuditSettings) -> bytes:
        if body.meta.correlation_id is None:
            body.meta.correlation_id = current_correlation_id()
        return await settings.set_audit(body)

    return [
        Route(Subjects.CREATE, CreateCustomer, CustomerCard, command,
              "Create a customer card. Idempotent by meta.command_id.", enqueue),
        Route(Subjects.UPDATE, UpdateCustomer, CustomerCard, command,
              "Change fields of a card; expected_version makes a mismatch a version_mismatch error.",
              enqueue),
        Route(Subjects.SET_STATUS, SetStatus, CustomerCard, command,
              "Change the status (penalty needs `until`).", enqueue),
        Route(Subjects.DELETE, DeleteCustomer, CustomerCard, command,
              "Delete a customer; its history stays.", enqueue),
        Route(Subjects.GET, GetCustomer, CustomerCard, get_customer, "One customer card."),
        Route(Subjects.LIST, ListCustomers, CustomerPage, list_customers,
              "The board: search, filters, sort, cursor paging."),
        Route(Subjects.AS_OF, AsOfQuery, AsOfCard, as_of,
              "A card as it was at an instant, folded from the customer's stored events."),
        Route(Subjects.GET_AUDIT_SETTINGS, GetAuditSettings, AuditSettings, get_audit_settings,
              "Audit settings."),
        Route(Subjects.SET_AUDIT_SETTINGS, SetAuditSettings, AuditSettings, set_audit_settings,
              "Turn the 'reason on every change' requirement on or off."),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (handlers never called)."""
    unused: Any = None
    return [
        *routes(commands=unused, queries=unused, settings=unused),
        *contact_routes(contacts=unused, portal=unused),
        DIAL_ROUTE,
        *bulk_routes(uploads=unused, editor=unused),
        *number_block_routes(blocks=unused),
        *payment_routes(commands=unused, queries=unused, paypal=unused, inbox=unused),
        *privacy_routes(commands=unused, keys=unused),
    ]
