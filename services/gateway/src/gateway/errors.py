"""The one error shape of the HTTP API, and the handlers that give it to every failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from shared.errors import (
    HTTP_STATUS,
    ErrorBody,
    ErrorCode,
    ErrorDetail,
    ErrorReply,
    ServiceError,
    pydantic_field,
    pydantic_message,
)
from shared.unavailable import RETRY_AFTER_S
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = structlog.get_logger(__name__)

# codes that only HTTP has (no service answers them)
BAD_REQUEST = "bad_request"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
HTTP_ONLY_STATUS: dict[str, int] = {
    BAD_REQUEST: 400, METHOD_NOT_ALLOWED: 405, PAYLOAD_TOO_LARGE: 413, UNSUPPORTED_MEDIA_TYPE: 415,
}
CODE_FOR_STATUS: dict[int, str] = {
    400: BAD_REQUEST, 401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND, 405: METHOD_NOT_ALLOWED, 409: ErrorCode.CONFLICT,
    412: ErrorCode.VERSION_MISMATCH, 413: PAYLOAD_TOO_LARGE, 415: UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION,
    429: ErrorCode.RATE_LIMITED, 503: ErrorCode.UNAVAILABLE,
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class ApiError(ServiceError):
    """A failure answered over HTTP, optionally with extra response headers."""

    def __init__(
        self,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.headers = dict(headers or {})


def status_for(code: str) -> int:
    """The HTTP status of an error code (an unknown code is the server's fault)."""
    return HTTP_STATUS.get(code) or HTTP_ONLY_STATUS.get(code) or 500


def error_response(
    code: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render `{"error": {"code", "message", "details"}}` with the code's status."""
    body = ErrorReply(error=ErrorBody(code=code, message=message, details=list(details)))
    return Response(
        body.model_dump_json().encode(), status_code=status or status_for(code),
        media_type="application/json", headers=dict(headers or {}),
    )


def request_details(errors: Sequence[Any]) -> list[ErrorDetail]:
    """Name each invalid field by its dotted path, without the `body.`/`query.` location."""
    details = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in LOCATIONS:
            loc = loc[1:]
        kind = err.get("type")
        message = pydantic_message(err)
        if kind == "json_invalid":
            problem = (err.get("ctx") or {}).get("error", "cannot be parsed")
            loc, message = [], f"the body is not valid JSON: {problem}"
        elif kind == "missing" and not loc:
            message = "a JSON body is required"
        details.append(ErrorDetail(field=pydantic_field(err, loc), message=message, type=kind))
    return details


def unavailable_response(away: str) -> Response:
    """503 `unavailable` with Retry-After: a server the gateway needs (PostgreSQL, NATS) is away."""
    return error_response(ErrorCode.UNAVAILABLE, f"{away} is unavailable; retry shortly",
                          headers={"Retry-After": str(RETRY_AFTER_S)})


async def _on_service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return service_error_response(exc)


def service_error_response(exc: ServiceError) -> Response:
    """A service's (or the gateway's own) error in the one shape, 503s with Retry-After."""
    headers = dict(exc.headers) if isinstance(exc, ApiError) else {}
    if exc.code == ErrorCode.UNAVAILABLE:  # every 503 says when to come back
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return error_response(exc.code, exc.message, exc.details, headers=headers)


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _not_json_body(request: Request, errors: Sequence[Any]) -> ErrorDetail | None:
    """A body sent without a JSON Content-Type fails as a whole: say which header to send."""
    whole = [e for e in errors if tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing"]
    if not whole or _is_json(request):
        return None
    got = request.headers.get("content-type") or "no Content-Type"
    return ErrorDetail(field="Content-Type", type="content_type",
                       message=f"send the body as JSON with `Content-Type: application/json` (got {got})")


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    wrong_type = _not_json_body(request, exc.errors())
    if wrong_type is not None:
        return error_response(ErrorCode.VALIDATION, wrong_type.message, [wrong_type])
    details = request_details(exc.errors())
    message = "the request is not valid"
    if any(d.type == "json_invalid" for d in details):
        message = "the request body is not valid JSON"
    return error_response(ErrorCode.VALIDATION, message, details)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_FOR_STATUS.get(exc.status_code, BAD_REQUEST if exc.status_code < 500 else "internal_error")
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(code, message, status=405, headers={"Allow": _allowed(request)})
    else:
        message = str(exc.detail)
    return error_response(code, message, status=exc.status_code, headers=exc.headers)


def _allowed(request: Request) -> str:
    """Every method some route takes on this path (Starlette names only the first route's)."""
    routes = request.app.router.routes
    allowed = [
        method for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure, FastAPI's own included, answer in the one error shape."""
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorReply, "description": description}


UNAUTHENTICATED_DOC = _doc("Missing, invalid or revoked bearer token.")
FORBIDDEN_DOC = _doc("The token's role may not do this.")
NOT_FOUND_DOC = _doc("No such resource (or the customer was deleted).")
CONFLICT_DOC = _doc("Conflict, e.g. a name already taken.")
PRECONDITION_DOC = _doc("`If-Match` names another version than the current one.")
VALIDATION_DOC = _doc("Invalid input; `details` name each field.")
UNAVAILABLE_DOC = _doc("A service behind the gateway did not answer.")
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED_DOC, 403: FORBIDDEN_DOC, 422: VALIDATION_DOC, 503: UNAVAILABLE_DOC,
}
