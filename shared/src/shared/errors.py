"""Typed errors: one shape on NATS and HTTP, `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """Error codes every service may answer; the gateway maps each to one HTTP status."""

    VALIDATION = "validation_error"
    REASON_REQUIRED = "reason_required"
    NOT_FOUND = "not_found"
    DELETED = "customer_deleted"
    CONFLICT = "conflict"
    NAME_TAKEN = "name_taken"
    EMAIL_TAKEN = "email_taken"
    PASSWORD_IN_NOTES = "password_in_notes"
    CODE_INVALID = "code_invalid"
    CODE_EXPIRED = "code_expired"
    CODE_LOCKED = "code_locked"
    CODE_NOT_REQUESTED = "code_not_requested"
    CURRENCY_IMMUTABLE = "currency_immutable"
    INVALID_TRANSITION = "invalid_status_transition"
    VERSION_MISMATCH = "version_mismatch"
    NUMBER_RANGE_NOT_SET = "number_range_not_set"
    NUMBER_RANGE_EXHAUSTED = "number_range_exhausted"
    ERASED = "personal_data_erased"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal_error"


HTTP_STATUS: dict[str, int] = {
    ErrorCode.VALIDATION: 422,
    ErrorCode.REASON_REQUIRED: 422,
    ErrorCode.CURRENCY_IMMUTABLE: 422,
    ErrorCode.INVALID_TRANSITION: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.DELETED: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.NAME_TAKEN: 409,
    ErrorCode.EMAIL_TAKEN: 409,
    ErrorCode.PASSWORD_IN_NOTES: 422,
    ErrorCode.CODE_INVALID: 422,
    ErrorCode.CODE_EXPIRED: 422,
    ErrorCode.CODE_LOCKED: 422,
    ErrorCode.CODE_NOT_REQUESTED: 422,
    ErrorCode.VERSION_MISMATCH: 412,
    ErrorCode.NUMBER_RANGE_NOT_SET: 409,
    ErrorCode.NUMBER_RANGE_EXHAUSTED: 409,
    ErrorCode.ERASED: 410,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class ErrorDetail(BaseModel):
    """One problem with one field (`field` is a dotted path, or None for the whole request)."""

    field: str | None = None
    message: str
    type: str | None = None


class ErrorBody(BaseModel):
    """The error itself."""

    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorReply(BaseModel):
    """What a failed request answers."""

    error: ErrorBody


class ServiceError(Exception):
    """A failure that becomes a typed error reply (never a stack trace)."""

    def __init__(
        self, code: str, message: str, details: list[ErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def to_reply(self) -> ErrorReply:
        """Render as the error reply model."""
        return ErrorReply(error=ErrorBody(code=self.code, message=self.message, details=self.details))


def key_reused() -> ServiceError:
    """A command id (an HTTP Idempotency-Key) sent again with a different request: 409."""
    return ServiceError(
        ErrorCode.CONFLICT, "this Idempotency-Key was already used for another request",
        [ErrorDetail(field="Idempotency-Key", message="already used for another request",
                     type="idempotency_key_reused")],
    )


class FieldError(ValueError):
    """A rule across fields broken by one of them: a model validator raises it to name that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def pydantic_field(err: Any, loc: list[str]) -> str | None:
    """The dotted field of a pydantic error, a FieldError's field appended to the model's place."""
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc = [*loc, cause.field]
    return ".".join(loc) or None


def pydantic_message(err: Any) -> str:
    """pydantic's message without its `Value error, ` prefix."""
    return str(err.get("msg")).removeprefix("Value error, ")


def details_from_pydantic(errors: list[Any]) -> list[ErrorDetail]:
    """Turn pydantic's error list into field-named details (no input values echoed)."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append(ErrorDetail(field=pydantic_field(err, loc), message=pydantic_message(err),
                               type=err.get("type")))
    return out
