"""Which failures mean "a server we need is away" (answered 503 `unavailable`), not a bug (500)."""

from __future__ import annotations

import asyncpg
import nats.errors

RETRY_AFTER_S = 5

_NATS_AWAY = (
    nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError, nats.errors.StaleConnectionError, nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
)
_POSTGRES_AWAY = (
    asyncpg.PostgresConnectionError,  # the connection failed or was lost
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up (57P0x)
    asyncpg.TooManyConnectionsError,
)


def unavailable_reason(exc: BaseException) -> str | None:
    """What is away ("PostgreSQL", "NATS") when `exc` says a server cannot be reached, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the cause may be wrapped
        seen.add(id(current))
        if isinstance(current, _POSTGRES_AWAY):
            return "PostgreSQL"
        if isinstance(current, asyncpg.InterfaceError) and "clos" in str(current):
            return "PostgreSQL"  # "connection is closed", "pool is closing"
        if isinstance(current, _NATS_AWAY):
            return "NATS"
        if isinstance(current, ConnectionError | TimeoutError):
            return "a server"  # refused, reset, or no answer in time (asyncpg's connect raises these)
        current = current.__cause__ or current.__context__
    return None
