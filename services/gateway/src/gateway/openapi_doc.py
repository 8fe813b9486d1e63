"""What the OpenAPI document adds to FastAPI's: the streamed bulk answers, 413 on every body."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from shared.contracts.bulk import CustomerResult, RowResult, UploadState
from shared.errors import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorReply"}


class BulkUploadAnswer(UploadState):
    """`POST /v1/customers/bulk`: the upload's counts and each row's result (or only the failed)."""

    results: list[RowResult]
    error: ErrorBody | None = None  # 422: why nothing was created


class BulkEditAnswer(BaseModel):
    """`bulk-update` and `bulk-delete`: each customer's result, then the counts."""

    correlation_id: str | None
    matched: int | None = None
    results: list[CustomerResult]
    succeeded: int
    failed: int


TOO_LARGE = {
    "description": "The body is larger than the gateway takes (PATCHBAY_MAX_BODY_BYTES; bulk uploads:"
                   " PATCHBAY_BULK_MAX_BODY_BYTES).",
    "content": {"application/json": {"schema": ERROR_REF}},
}


def declare_too_large(schema: dict[str, Any]) -> None:
    """413 on every operation that takes a body (the middleware answers it for each)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", TOO_LARGE)


def install_openapi(app: FastAPI) -> None:
    """FastAPI's document, with what `declare_too_large` adds."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            declare_too_large(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def main() -> None:
    """`python -m gateway.openapi_doc [out.json]`: write the OpenAPI document (stdout without a path)."""
    from gateway.bootstrap import create_app
    from gateway.settings import GatewaySettings

    text = json.dumps(create_app(GatewaySettings()).openapi(), indent=2, sort_keys=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text + "\n")
        print(f"wrote {sys.argv[1]}")
    else:
        print(text)


if __name__ == "__main__":
    main()
