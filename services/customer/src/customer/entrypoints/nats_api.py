"""The customer service's NATS request/reply API (FastStream subscribers, documented as AsyncAPI)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from faststream.middlewares import ExceptionMiddleware
from faststream.nats import NatsBroker, NatsMessage
from pydantic import ValidationError
from shared.contracts.customer import (
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
from shared.errors import ErrorCode, ServiceError, details_from_pydantic
from shared.logging import bind_from_headers

from customer.application.commands import CustomerCommands, error_bytes
from customer.application.queries import CustomerQueries
from customer.application.settings import SettingsService

log = structlog.get_logger(__name__)

QUEUE = "customer"
WORKERS = 128  # concurrent requests in flight per replica: what lets commands batch


def error_middleware() -> ExceptionMiddleware:
    """Every failure becomes a typed error reply: bad input, a rule, or our own bug."""
    mw = ExceptionMiddleware()

    @mw.add_handler(ValidationError, publish=True)
    async def invalid(exc: ValidationError) -> bytes:
        return error_bytes(
            ServiceError(ErrorCode.VALIDATION, "the request is not valid",
                         details_from_pydantic(exc.errors(include_input=False)))
        )

    @mw.add_handler(json.JSONDecodeError, publish=True)
    async def not_json(exc: json.JSONDecodeError) -> bytes:
        return error_bytes(ServiceError(ErrorCode.VALIDATION, f"the request is not JSON: {exc}"))

    @mw.add_handler(ServiceError, publish=True)
    async def rule(exc: ServiceError) -> bytes:
        return error_bytes(exc)

    @mw.add_handler(Exception, publish=True)
    async def bug(exc: Exception) -> bytes:
        log.exception("request_failed", error=str(exc))
        return error_bytes(ServiceError(ErrorCode.INTERNAL, "internal error; it has been logged"))

    return mw


def _with_correlation(meta: Any, msg: NatsMessage) -> None:
    ids = bind_from_headers(msg.headers)
    if meta.correlation_id is None and ids.get("correlation_id"):
        meta.correlation_id = ids["correlation_id"]


def register(
    broker: NatsBroker,
    *,
    commands: CustomerCommands,
    queries: CustomerQueries,
    settings: SettingsService,
) -> None:
    """Subscribe every subject of the customer API on the broker."""
    sub = {"queue": QUEUE, "max_workers": WORKERS}

    @broker.subscriber(Subjects.CREATE, **sub, title="customer.cmd.create",
                       description="Create a customer; replies with the CustomerCard.")
    async def create_customer(body: CreateCustomer, msg: NatsMessage) -> bytes:
        _with_correlation(body.meta, msg)
        return await commands.handle(body)

    @broker.subscriber(Subjects.UPDATE, **sub, description="Change fields of a card (CustomerCard).")
    async def update_customer(body: UpdateCustomer, msg: NatsMessage) -> bytes:
        _with_correlation(body.meta, msg)
        return await commands.handle(body)

    @broker.subscriber(Subjects.SET_STATUS, **sub, description="Change the status (CustomerCard).")
    async def set_status(body: SetStatus, msg: NatsMessage) -> bytes:
        _with_correlation(body.meta, msg)
        return await commands.handle(body)

    @broker.subscriber(Subjects.DELETE, **sub, description="Delete a customer (CustomerCard).")
    async def delete_customer(body: DeleteCustomer, msg: NatsMessage) -> bytes:
        _with_correlation(body.meta, msg)
        return await commands.handle(body)

    @broker.subscriber(Subjects.GET, **sub, description="One card (CustomerCard).")
    async def get_customer(body: GetCustomer) -> bytes:
        return await queries.get(body.customer_id)

    @broker.subscriber(Subjects.LIST, **sub, description="The board (CustomerPage).")
    async def list_customers(body: ListCustomers) -> bytes:
        return await queries.list(body)

    @broker.subscriber(Subjects.GET_AUDIT_SETTINGS, **sub, description="Audit settings.")
    async def get_audit_settings(body: GetAuditSettings) -> bytes:
        state = await settings.current()
        return json.dumps({"require_reason": state.require_reason, "version": state.version}).encode()

    @broker.subscriber(Subjects.SET_AUDIT_SETTINGS, **sub, description="Change audit settings.")
    async def set_audit_settings(body: SetAuditSettings, msg: NatsMessage) -> bytes:
        _with_correlation(body.meta, msg)
        return await settings.set_audit(body)

    # reply models, for the AsyncAPI document's readers
    _ = (CustomerCard, CustomerPage)
