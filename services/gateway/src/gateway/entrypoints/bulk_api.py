"""Bulk routes: upload (CSV or JSON), edit (by ids or a board filter), delete; results per row or customer."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import IO, Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, model_validator
from shared.contracts.bulk import MAX_BULK_IDS, MAX_FILTER_PAGE, BulkFilter, BulkMode, BulkSet, BulkSubjects
from shared.contracts.customer import CustomerCreate
from shared.contracts.fields import Reason, Tag
from shared.errors import ErrorCode

from gateway.auth.roles import Permission
from gateway.bulk_client import BulkClient, spool
from gateway.bulk_io import Row, read_csv, read_json_array, read_ndjson
from gateway.dependencies import Caller, caller, get_runtime
from gateway.errors import COMMON_ERRORS, UNSUPPORTED_MEDIA_TYPE, ApiError, _doc
from gateway.models import Strict
from gateway.openapi_doc import BulkEditAnswer, BulkUploadAnswer

router = APIRouter(prefix="/v1/customers", tags=["bulk"], responses=COMMON_ERRORS)
Writer = Annotated[Caller, Depends(caller(Permission.CUSTOMERS_WRITE))]
UPLOAD_IDS = uuid.UUID("0b8f4a5e-3f2c-4d0e-9a51-2c7e1d6b9f10")  # namespace: upload id per idempotency key
MAX_HTTP_IDS = 10_000
ERROR_SAMPLE = 100
READERS: dict[str, Callable[[IO[str]], Iterator[Row]]] = {
    "text/csv": read_csv,
    "application/csv": read_csv,
    "application/json": read_json_array,
    "application/x-ndjson": read_ndjson,
    "application/ndjson": read_ndjson,
}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": CustomerCreate.model_json_schema()}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
UPLOAD_DOCS: dict[int | str, dict[str, Any]] = {
    200: {"model": BulkUploadAnswer,
          "description": "best_effort: some rows created, some failed (see `results`)."},
    201: {"model": BulkUploadAnswer, "description": "Every row created; `results` lists each row's id."},
    413: _doc("The upload is larger than the gateway takes."),
    415: _doc("Send text/csv, application/json or application/x-ndjson."),
    422: _doc("Nothing created: all_or_nothing with a bad row, or no valid row; `results` say which."),
}

EDIT_DOCS: dict[int | str, dict[str, Any]] = {
    200: {"model": BulkEditAnswer,
          "description": "Each customer's result (`ok`, or its `error`), then the counts."},
}


def _reader(request: Request) -> Callable[[IO[str]], Iterator[Row]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in READERS:
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE, f"send the upload as {', '.join(READERS)} (got '{kind or 'nothing'}')"
        )
    return READERS[kind]


def _status(summary: dict[str, Any]) -> int:
    if summary["created"] == summary["total"]:
        return 201
    return 422 if summary["created"] == 0 else 200


async def _error(client: BulkClient, upload_id: UUID, summary: dict[str, Any]) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    async for items in client.results(upload_id, only_errors=True, limit=ERROR_SAMPLE):
        for item in items:
            details += [
                {**e, "field": f"rows[{item['row']}]" + (f".{e['field']}" if e["field"] else "")}
                for e in item["errors"]
            ]
        break
    why = (
        "all_or_nothing: nothing was created" if summary["mode"] == "all_or_nothing" else "no row was created"
    )
    return {
        "code": ErrorCode.VALIDATION,
        "message": f"{summary['failed']} of {summary['total']} rows are invalid; {why}",
        "details": details[:ERROR_SAMPLE],
    }


async def _upload_body(
    client: BulkClient, upload_id: UUID, head: dict[str, Any], only_errors: bool
) -> AsyncIterator[bytes]:
    yield orjson.dumps(head)[:-1] + b',"results":['
    first = True
    async for items in client.results(upload_id, only_errors=only_errors):
        if items:
            yield (b"" if first else b",") + b",".join(orjson.dumps(i) for i in items)
            first = False
    yield b"]}"


@router.post(
    "/bulk",
    summary="Bulk upload (CSV or JSON)",
    responses=UPLOAD_DOCS,
    openapi_extra=UPLOAD_BODY,
    status_code=201,
)
async def bulk_upload(
    request: Request,
    who: Writer,
    mode: BulkMode = "all_or_nothing",
    results: Annotated[
        Literal["all", "errors"], Query(description="`errors`: list failed rows only")
    ] = "all",
) -> Response:
    """Create many customers; every row is validated like a single create, the answer lists each row."""
    runtime = get_runtime(request)
    settings = runtime.settings
    reader = _reader(request)
    upload_id = (  # scoped to the token like command ids; the raw key keeps older uploads' ids
        uuid.uuid5(UPLOAD_IDS, f"{who.principal.token_id}:{who.idempotency_key}")
        if who.idempotency_key
        else uuid.uuid4()
    )
    client = BulkClient(
        runtime.customers, who.correlation_id, commit_timeout_s=settings.bulk_commit_timeout_s
    )
    meta = who.meta()
    # the body first: its hash goes with the upload, so a key reused for another file is refused
    digest = hashlib.blake2b(f"{mode}\0{request.headers.get('content-type', '')}\0".encode(), digest_size=16)
    text = await spool(request, settings.bulk_max_body_bytes, digest)
    try:
        fingerprint = digest.hexdigest() if who.idempotency_key else None
        summary = await client.begin(upload_id, mode, meta, fingerprint)
        if summary["state"] == "staging":
            staged = await client.stage(upload_id, reader(text))
            if staged == 0:
                raise ApiError(ErrorCode.VALIDATION, "the upload has no rows")
            summary = await client.commit(upload_id, meta)
    finally:
        text.close()
    status = _status(summary)
    head = {**summary, **({"error": await _error(client, upload_id, summary)} if status == 422 else {})}
    return StreamingResponse(
        _upload_body(client, upload_id, head, results == "errors"),
        status_code=status,
        media_type="application/json",
    )


class BulkUpdateBody(Strict):
    """`POST /v1/customers/bulk-update`: `ids` or `filter`, and what to change."""

    ids: list[UUID] | None = Field(default=None, max_length=MAX_HTTP_IDS)
    filter: BulkFilter | None = None
    set: BulkSet = Field(default_factory=BulkSet)
    add_tags: list[Tag] = Field(default_factory=list, max_length=50)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=50)
    reason: Reason | None = None

    @model_validator(mode="after")
    def _one_target_and_a_change(self) -> BulkUpdateBody:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either `ids` or `filter`")
        if not self.set.model_fields_set and not self.add_tags and not self.remove_tags:
            raise ValueError("nothing to change: give `set`, `add_tags` or `remove_tags`")
        return self


class BulkDeleteBody(Strict):
    """`POST /v1/customers/bulk-delete`."""

    ids: list[UUID] = Field(min_length=1, max_length=MAX_HTTP_IDS)
    reason: Reason | None = None


Page = Callable[[str | None], Awaitable[dict[str, Any]]]


async def _pages(first: dict[str, Any], more: Page) -> AsyncIterator[bytes]:
    """Per-customer results streamed page by page, counts at the end."""
    ok = failed = 0
    page: dict[str, Any] | None = first
    head = {"correlation_id": first["correlation_id"], "matched": first.get("matched")}
    yield orjson.dumps(head)[:-1] + b',"results":['
    sep = b""
    while page is not None:
        for r in page["results"]:
            ok, failed = ok + r["ok"], failed + (not r["ok"])
        if page["results"]:
            yield sep + b",".join(orjson.dumps(r) for r in page["results"])
            sep = b","
        page = await more(page["next_cursor"]) if page.get("next_cursor") else None
    yield b'],"succeeded":%d,"failed":%d}' % (ok, failed)


def _id_pages(client: BulkClient, subject: str, ids: list[str], body: dict[str, Any]) -> Page:
    # no ids still makes one call: the service answers it (an empty result or a 422), never an IndexError
    chunks = [ids[i : i + MAX_BULK_IDS] for i in range(0, len(ids), MAX_BULK_IDS)] or [[]]

    async def page(cursor: str | None) -> dict[str, Any]:
        index = int(cursor or 0)
        reply = dict(await client.call(subject, {**body, "ids": chunks[index]}, timeout_s=120))
        reply["next_cursor"] = str(index + 1) if index + 1 < len(chunks) else None
        reply["matched"] = len(ids)
        return reply

    return page


@router.post("/bulk-update", summary="Bulk edit by ids or by a board filter", responses=EDIT_DOCS)
async def bulk_update(request: Request, body: BulkUpdateBody, who: Writer) -> Response:
    """Change fields and tags of many customers; each gets its own events, one correlation id for all."""
    client = BulkClient(get_runtime(request).customers, who.correlation_id)
    page: Page
    common = {
        "meta": who.meta(body.reason),
        "set": body.set.model_dump(mode="json", exclude_unset=True),
        "add_tags": body.add_tags,
        "remove_tags": body.remove_tags,
    }
    if body.ids is not None:
        page = _id_pages(client, BulkSubjects.UPDATE, list(dict.fromkeys(str(i) for i in body.ids)), common)
    else:
        assert body.filter is not None
        flt = body.filter.model_dump(mode="json", exclude_none=True)

        async def filter_page(cursor: str | None) -> dict[str, Any]:
            return dict(
                await client.call(
                    BulkSubjects.UPDATE,
                    {**common, "filter": flt, "cursor": cursor, "limit": MAX_FILTER_PAGE},
                    timeout_s=120,
                )
            )

        page = filter_page

    first = await page(None)  # before the 200 goes out, so a failure still answers an error
    return StreamingResponse(_pages(first, page), media_type="application/json")


@router.post("/bulk-delete", summary="Bulk delete by ids", responses=EDIT_DOCS)
async def bulk_delete(request: Request, body: BulkDeleteBody, who: Writer) -> Response:
    """Delete many customers; per-customer results, one correlation id for all."""
    client = BulkClient(get_runtime(request).customers, who.correlation_id)
    ids = list(dict.fromkeys(str(i) for i in body.ids))
    page = _id_pages(client, BulkSubjects.DELETE, ids, {"meta": who.meta(body.reason)})
    first = await page(None)
    return StreamingResponse(_pages(first, page), media_type="application/json")
