"""The customer service's subjects for bulk upload, bulk edit and bulk delete."""

from __future__ import annotations

from typing import Any

from shared.contracts.bulk import (
    BeginUpload,
    BulkDelete,
    BulkResults,
    BulkSubjects,
    BulkUpdate,
    CommitUpload,
    GetUploadResults,
    RowResultPage,
    StageReply,
    StageRows,
    UploadState,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from customer.application.bulk_edit import BulkEditor
from customer.application.bulk_upload import BulkUploads


def _with_correlation(body: Any) -> Any:
    if body.meta.correlation_id is None:
        body.meta.correlation_id = current_correlation_id()
    return body


def bulk_routes(*, uploads: BulkUploads, editor: BulkEditor) -> list[Route]:
    """Every bulk subject with its models and handler."""

    async def begin(body: BeginUpload) -> bytes:
        return await uploads.begin(_with_correlation(body))

    async def stage(body: StageRows) -> bytes:
        return await uploads.stage(body)

    async def commit(body: CommitUpload) -> bytes:
        return await uploads.commit(_with_correlation(body))

    async def results(body: GetUploadResults) -> bytes:
        return await uploads.results(body)

    async def update(body: BulkUpdate) -> bytes:
        return await editor.update(_with_correlation(body))

    async def delete(body: BulkDelete) -> bytes:
        return await editor.delete(_with_correlation(body))

    s = BulkSubjects
    return [
        Route(s.BEGIN, BeginUpload, UploadState, begin,
              "Open a bulk upload under a client-chosen id (mode all_or_nothing or best_effort); an id"
              " seen before answers its state, and one that never committed starts over."),
        Route(s.STAGE, StageRows, StageReply, stage,
              "Validate a chunk of rows (at most 2,000; keep each message under 1 MB) with the rules of"
              " a single create and store each row's data or errors. A re-sent row replaces the old."),
        Route(s.COMMIT, CommitUpload, UploadState, commit,
              "Check names against live customers and across the file, then create the customers in"
              " one transaction (all_or_nothing: none if any row failed). Idempotent."),
        Route(s.RESULTS, GetUploadResults, RowResultPage, results,
              "One page of row results: created id, or errors by column (`field`)."),
        Route(s.UPDATE, BulkUpdate, BulkResults, update,
              "Edit customers by ids, or one page of those a board filter matches (follow"
              " next_cursor); each customer gets its own events, all with one correlation id."),
        Route(s.DELETE, BulkDelete, BulkResults, delete,
              "Delete customers by id; per-customer results, one correlation id."),
    ]
