"""Bulk work against the customer service: rows staged in chunks under 1 MB, results in pages.

The body is spooled to a temporary file (in memory up to 1 MiB, then on disk) while its
UTF-8 is checked, then read one row at a time; rows travel in chunks of at most
`STAGE_ROWS` rows and `STAGE_BYTES` bytes, a few chunks in flight at once so the service
validates one while the gateway reads the next. Results come back page by page and are
streamed to the client, so no step holds the whole file.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any
from uuid import UUID

import orjson
from fastapi import Request
from shared.contracts.bulk import MAX_RESULT_PAGE, BulkSubjects
from shared.errors import ErrorCode, ErrorDetail

from gateway.bulk_io import Row
from gateway.errors import PAYLOAD_TOO_LARGE, ApiError
from gateway.service_client import ServiceClient

STAGE_ROWS = 1000
STAGE_BYTES = 600 * 1024  # a chunk stays well under NATS' 1 MB message limit
SPOOL_IN_MEMORY = 1024 * 1024


async def spool(request: Request, limit: int, digest: Any = None) -> IO[str]:
    """The request body as text (UTF-8, BOM dropped), checked and spooled; too large is 413.

    `digest` (a hashlib object), when given, is fed every byte of the body.
    """
    raw = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = pending = 0
    try:
        async for chunk in request.stream():
            if size + len(chunk) > limit:
                raise ApiError(PAYLOAD_TOO_LARGE, f"the upload is larger than {limit} bytes")
            pending = len(decoder.getstate()[0])  # bytes of a character begun in the last chunk
            decoder.decode(chunk)
            raw.write(chunk)
            if digest is not None:
                digest.update(chunk)
            size += len(chunk)
        pending = len(decoder.getstate()[0])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raw.close()
        at = size - pending + exc.start  # offset of the bad byte in the whole body
        message = (f"the body is not UTF-8 text: byte {at} (counted from 0) is 0x{exc.object[exc.start]:02x};"
                   " save the file as UTF-8 and send it again")
        raise ApiError(
            ErrorCode.VALIDATION, message, [ErrorDetail(field=None, message=message, type="encoding")]
        ) from None
    except BaseException:
        raw.close()
        raise
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _too_large(row: Row) -> bytes:
    message = f"the row is larger than {STAGE_BYTES} bytes"
    small = Row(
        row.row, row.line, {}, [*row.errors, ErrorDetail(field=None, message=message, type="row_size")]
    )
    return orjson.dumps(small.staged())


def chunks(rows: Iterator[Row]) -> Iterator[list[bytes]]:
    """Rows as JSON, grouped into chunks that fit one stage request."""
    batch: list[bytes] = []
    size = 0
    for row in rows:
        item = orjson.dumps(row.staged())
        if len(item) > STAGE_BYTES:
            item = _too_large(row)
        if batch and (len(batch) >= STAGE_ROWS or size + len(item) > STAGE_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield batch


class BulkClient:
    """Runs uploads and bulk edits through the customer service on behalf of one request."""

    def __init__(
        self,
        service: ServiceClient,
        correlation_id: str,
        *,
        in_flight: int = 3,
        commit_timeout_s: float = 600.0,
    ) -> None:
        self.service = service
        self.correlation_id = correlation_id
        self.in_flight = in_flight
        self.commit_timeout_s = commit_timeout_s

    async def call(self, subject: str, body: Any, *, timeout_s: float | None = None) -> Any:
        """One JSON request; the parsed reply (an error reply raises)."""
        return await self.service.request_json(
            subject, body, correlation_id=self.correlation_id, timeout_s=timeout_s
        )

    async def begin(
        self, upload_id: UUID, mode: str, meta: dict[str, Any], fingerprint: str | None = None,
    ) -> dict[str, Any]:
        """Open the upload (or find it committed by an earlier try with the same key)."""
        return dict(
            await self.call(BulkSubjects.BEGIN, {"upload_id": str(upload_id), "mode": mode, "meta": meta,
                                                 "fingerprint": fingerprint})
        )

    async def stage(self, upload_id: UUID, rows: Iterator[Row]) -> int:
        """Send every row, a few chunks in flight; the number of rows sent."""
        slots = asyncio.Semaphore(self.in_flight)
        pending: set[asyncio.Task[bytes]] = set()
        head = b'{"upload_id":"%s","rows":[' % str(upload_id).encode()
        sent = 0
        try:
            for batch in chunks(rows):
                await slots.acquire()
                for done in [t for t in pending if t.done()]:
                    pending.discard(done)
                    done.result()  # a failed chunk fails the upload now
                task = asyncio.create_task(
                    self.service.request(
                        BulkSubjects.STAGE,
                        head + b",".join(batch) + b"]}",
                        correlation_id=self.correlation_id,
                        timeout_s=60,
                    )
                )
                task.add_done_callback(lambda _: slots.release())
                pending.add(task)
                sent += len(batch)
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*pending, return_exceptions=True)
        return sent

    async def commit(self, upload_id: UUID, meta: dict[str, Any]) -> dict[str, Any]:
        """Create the rows (by the upload's mode); the summary."""
        return dict(
            await self.call(
                BulkSubjects.COMMIT,
                {"upload_id": str(upload_id), "meta": meta},
                timeout_s=self.commit_timeout_s,
            )
        )

    async def results(
        self, upload_id: UUID, *, only_errors: bool, limit: int = MAX_RESULT_PAGE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of row results in row order."""
        after: int | None = 0
        while after is not None:
            page = await self.call(
                BulkSubjects.RESULTS,
                {"upload_id": str(upload_id), "after_row": after, "limit": limit, "only_errors": only_errors},
            )
            yield page["items"]
            after = page["next_after_row"]
