"""structlog set-up: JSON lines in production, console in a terminal, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

SECRET_KEY = re.compile(r"pass(word)?|secret|token|auth|hash|api[_-]?key|credential", re.I)
REDACTED = "[redacted]"

CORRELATION_HEADER = "X-Correlation-Id"
CAUSATION_HEADER = "X-Causation-Id"


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if SECRET_KEY.search(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of every key that names a secret, at any depth."""
    for key in list(event_dict):
        if key != "event" and SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


def configure_logging(
    service: str, *, level: str = "INFO", fmt: str = "auto"
) -> structlog.stdlib.BoundLogger:
    """Configure structlog (and stdlib logging through it) for one service process."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # one write() per line (print() writes the text and its newline apart): under
        # PYTHONUNBUFFERED, processes sharing a pipe (`make run`) would otherwise splice their lines
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("faststream").setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)
    log: structlog.stdlib.BoundLogger = structlog.get_logger(service)
    return log


def bind_from_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Bind correlation and causation ids from NATS headers to this task's log context."""
    ids = {}
    if headers:
        if cid := headers.get(CORRELATION_HEADER):
            ids["correlation_id"] = cid
        if cause := headers.get(CAUSATION_HEADER):
            ids["causation_id"] = cause
    structlog.contextvars.unbind_contextvars("correlation_id", "causation_id")
    structlog.contextvars.bind_contextvars(**ids)
    return ids


def current_correlation_id() -> str | None:
    """The correlation id bound to this task's log context, if any."""
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else None
