"""Bulk upload: rows are validated and staged under an upload id, then created in one transaction.

Staging runs each row through the rules of a single create (`CustomerCreate`, then
`decide_create`) and stores its event data or its errors; chunks may reach any replica.
Commit takes the upload's row lock, marks rows whose name is taken by a live customer or
by an earlier row of the same file, and then (all rows valid, or `best_effort`) appends
the CustomerCreated events, their outbox rows and their board rows in batches of
statements inside ONE transaction: an `all_or_nothing` upload either fully happens or not
at all. The names' unique index stays the last word: a name taken by a concurrent create
(the store raises NameTaken) rolls the transaction back, and the commit runs again with fresh
checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog
from pydantic import ValidationError
from shared.contracts.bulk import (
    MAX_UPLOAD_ROWS,
    BeginUpload,
    CommitUpload,
    GetUploadResults,
    StageRows,
)
from shared.contracts.customer import CommandMeta, CustomerCreate
from shared.contracts.events import REGISTRY
from shared.envelope import Actor, EventEnvelope, Metadata
from shared.errors import ErrorCode, ServiceError, details_from_pydantic, key_reused
from shared.eventstore import EventStore, Fragment
from shared.ids import new_id

from customer.application import bulk_upload_sql as sql
from customer.application.settings import SettingsService
from customer.domain import events as ev
from customer.domain.decide import decide_create, require_reason
from customer.domain.errors import NameTaken
from customer.domain.evolve import apply
from customer.projections import board

log = structlog.get_logger(__name__)

COMMIT_ATTEMPTS = 3
YIELD_EVERY = 200  # rows validated between giving the event loop back to other requests


def _detail(field: str | None, message: str, kind: str) -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind}


def validate_row(data: dict[str, Any], now: datetime) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The CustomerCreated data of a row, or its errors by field (the rules of a single create)."""
    errors: list[dict[str, Any]] = []
    if data.get("currency") in (None, ""):
        errors.append(_detail("currency", "currency is required in a bulk upload", "missing"))
    try:
        model = CustomerCreate.model_validate(data)
    except ValidationError as exc:
        for d in details_from_pydantic(exc.errors(include_input=False, include_url=False)):
            if not (d.field == "currency" and errors):
                errors.append(_detail(d.field, d.message.removeprefix("Value error, "), d.type or "invalid"))
        return None, errors
    if errors:
        return None, errors
    try:
        [draft] = decide_create(model, now)
    except ServiceError as err:
        return None, [_detail(d.field, d.message, d.type or err.code) for d in err.details] or [
            _detail(None, err.message, err.code)]
    return REGISTRY.dump(draft)[2], []


class BulkUploads:
    """Begin, stage, commit and read the results of bulk uploads."""

    def __init__(
        self, store: EventStore, settings: SettingsService, *, batch_size: int = 2000,
        keep: timedelta = timedelta(days=7), clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.on_committed = on_committed  # customers were created (the board's totals changed)
        self.pool: asyncpg.Pool = store.pool
        self.settings = settings
        self.batch_size = batch_size
        self.keep = keep  # how long an upload's results (and its idempotency) are kept
        self.clock = clock

    async def begin(self, cmd: BeginUpload) -> bytes:
        """Open an upload; an id seen before answers its state (a committed one stays as it is)."""
        require_reason(await self.settings.current(), cmd.meta.reason)
        await self.pool.execute(sql.FORGET, self.clock() - self.keep)
        async with self.pool.acquire() as conn, conn.transaction():
            new = await conn.fetchval(
                sql.BEGIN, cmd.upload_id, cmd.mode, cmd.meta.actor.model_dump_json(),
                cmd.meta.correlation_id, cmd.fingerprint,
            )
            row = await conn.fetchrow(f"{sql.UPLOAD} FOR UPDATE", cmd.upload_id)
            if new is None and row["state"] == "staging":
                # a retry of an upload that never committed: it starts over (with this body)
                await conn.execute("DELETE FROM bulk_rows WHERE upload_id = $1", cmd.upload_id)
                row = await conn.fetchrow(sql.RESTART, cmd.upload_id, cmd.mode, cmd.meta.correlation_id,
                                          cmd.fingerprint)
            elif new is None and None not in (row["fingerprint"], cmd.fingerprint) \
                    and row["fingerprint"] != cmd.fingerprint:
                raise key_reused()  # the key of a finished upload, sent with another file
        return _summary(row)

    async def stage(self, cmd: StageRows) -> bytes:
        """Validate a chunk of rows and store each one's data or errors."""
        state = await self.pool.fetchval("SELECT state FROM bulk_uploads WHERE id = $1", cmd.upload_id)
        if state is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no upload {cmd.upload_id}: begin it first")
        if state != "staging":
            raise ServiceError(ErrorCode.CONFLICT, f"upload {cmd.upload_id} is already {state}")
        now = self.clock()
        out: list[dict[str, Any]] = []
        invalid = 0
        for i, staged in enumerate(cmd.rows):
            if staged.row > MAX_UPLOAD_ROWS:
                raise ServiceError(ErrorCode.VALIDATION, f"an upload holds at most {MAX_UPLOAD_ROWS} rows")
            data, errors = validate_row(staged.data, now)
            errors = [d.model_dump() for d in staged.errors] + errors
            invalid += bool(errors)
            out.append({"row_no": staged.row, "line": staged.line, "data": None if errors else data,
                        "errors": errors, "customer_id": None if errors else str(new_id())})
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        await self.pool.execute(sql.STAGE, cmd.upload_id, orjson.dumps(out).decode())
        return orjson.dumps({"upload_id": str(cmd.upload_id), "staged": len(out), "invalid": invalid})

    async def commit(self, cmd: CommitUpload) -> bytes:
        """Check names, then create every row (or, all_or_nothing with a bad row, none)."""
        require_reason(await self.settings.current(), cmd.meta.reason)
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                return await self._commit_once(cmd.upload_id, cmd.meta)
            except NameTaken:  # a concurrent create took a name: check the names again
                log.info("bulk_commit_name_race", upload_id=str(cmd.upload_id), attempt=attempt)
        raise ServiceError(ErrorCode.CONFLICT, "names kept being taken while committing; retry")

    async def _commit_once(self, upload_id: UUID, meta: CommandMeta) -> bytes:
        async with self.pool.acquire() as conn, conn.transaction():
            upload = await conn.fetchrow(f"{sql.UPLOAD} FOR UPDATE", upload_id)
            if upload is None:
                raise ServiceError(ErrorCode.NOT_FOUND, f"no upload {upload_id}")
            if upload["state"] != "staging":
                return _summary(upload)  # committed (or rejected) before: the same answer
            started = time.perf_counter()
            await conn.execute(sql.PENALTY_PASSED, upload_id, self.clock())
            await conn.execute(sql.NAME_TAKEN, upload_id)
            await conn.execute(sql.NAME_REPEATED, upload_id)
            counts = await conn.fetchrow(sql.COUNTS, upload_id)
            checked = time.perf_counter()
            failed = int(counts["failed"])
            created = 0
            if upload["mode"] == "best_effort" or failed == 0:
                created = await self._create_all(conn, upload, meta)
            state = "rejected" if created == 0 and failed else "committed"
            row = await conn.fetchrow(sql.FINISH, upload_id, state, counts["total"], created, failed)
            appended = time.perf_counter()
        if created:
            self.on_committed()
        log.info("bulk_upload_committed", upload_id=str(upload_id), state=state, created=created,
                 failed=failed, check_s=round(checked - started, 3),
                 create_s=round(appended - checked, 3), commit_s=round(time.perf_counter() - appended, 3))
        return _summary(row)

    async def _create_all(self, conn: asyncpg.Connection, upload: asyncpg.Record, meta: CommandMeta) -> int:
        metadata = Metadata(
            actor=Actor.model_validate_json(upload["actor"]), correlation_id=upload["correlation_id"],
            causation_id=str(upload["id"]), reason=meta.reason,
        )
        now = self.clock()
        created = 0
        appending: asyncio.Task[list[int]] | None = None
        rows = await conn.fetch(sql.VALID_ROWS, upload["id"], 0, self.batch_size)
        try:
            while rows:
                events, board_rows = _created(rows, metadata, now)  # while the last batch is appended
                if appending is not None:
                    await appending
                after = rows[-1]["row_no"]
                rows = await conn.fetch(sql.VALID_ROWS, upload["id"], after, self.batch_size)
                appending = asyncio.create_task(self.store.append(
                    events, conn=conn,
                    fragments=[Fragment(board.UPSERT_SQL, [board.rows_json(board_rows)])],
                ))
                created += len(events)
            if appending is not None:
                await appending
        finally:  # never leave a statement running on the connection we give back
            if appending is not None and not appending.done():
                with contextlib.suppress(Exception):
                    await appending
        return created

    async def results(self, query: GetUploadResults) -> bytes:
        """One page of row results in row order."""
        state = await self.pool.fetchval("SELECT state FROM bulk_uploads WHERE id = $1", query.upload_id)
        if state is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no upload {query.upload_id}")
        where = " AND errors <> '[]'::jsonb" if query.only_errors else ""
        rows = await self.pool.fetch(
            sql.RESULTS.format(where=where), query.upload_id, query.after_row, query.limit + 1,
            state == "committed",
        )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items = [
            {"row": r["row_no"], "line": r["line"], "status": r["status"],
             "id": str(r["customer_id"]) if r["status"] == "created" else None,
             "errors": orjson.Fragment(r["errors"])}
            for r in rows
        ]
        return orjson.dumps({"items": items, "next_after_row": rows[-1]["row_no"] if more else None})


def _created(
    rows: list[asyncpg.Record], metadata: Metadata, now: datetime
) -> tuple[list[EventEnvelope], list[dict[str, Any]]]:
    """The CustomerCreated events of staged rows and the board rows of their customers."""
    events: list[EventEnvelope] = []
    board_rows: list[dict[str, Any]] = []
    for r in rows:
        created = ev.CustomerCreated.model_validate_json(r["data"])
        event = REGISTRY.envelope(
            created, category=ev.CUSTOMER_CATEGORY, stream_id=r["customer_id"], version=1,
            occurred_at=now, metadata=metadata,
        )
        state = apply(None, created, stream_id=str(r["customer_id"]), version=1, at=now)
        assert state is not None
        board_rows.append(board.row(state, orjson.dumps(state.card(), default=str).decode()))
        events.append(event)
    return events, board_rows


def _summary(row: asyncpg.Record) -> bytes:
    return orjson.dumps({
        "upload_id": str(row["id"]), "mode": row["mode"], "state": row["state"],
        "total": row["total"], "created": row["created"], "failed": row["failed"],
        "correlation_id": row["correlation_id"],
    })
