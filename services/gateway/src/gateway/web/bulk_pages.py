"""Bulk work from the board: edit and delete the selection, upload a CSV file with per-row results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from shared.contracts.fields import country_code
from starlette.datastructures import FormData, UploadFile

from gateway.dependencies import get_runtime
from gateway.web.api_client import SignInRequired
from gateway.web.board_pages import BoardQuery, selected_ids, selection_errors
from gateway.web.forms import FormErrors, errors_from, split_list, text
from gateway.web.message_pages import names_of, target
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page

router = APIRouter(prefix=f"{CONSOLE}/bulk", route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
SET_FIELDS = ("channels", "cps", "status", "until", "portal_access", "country", "tax", "debit_limit")
EDIT_FIELDS = (*SET_FIELDS, "add_tags", "remove_tags", "reason", "ids", "filter", "set")
STATUSES = ("active", "inactive", "pending_approval", "penalty")
SHOWN_ROWS = 2000
MAX_DELETE = 10_000


def changes(form: FormData) -> dict[str, Any]:
    """`set`, `add_tags`, `remove_tags` from the form; a blank field is left unchanged."""
    chosen: dict[str, Any] = {}
    for name in SET_FIELDS:
        value = text(form, name)
        if name == "portal_access":
            if value in ("yes", "no"):
                chosen[name] = value == "yes"
        elif name == "until" and value:
            chosen[name] = value if value.endswith("Z") else f"{value}:00Z"
        elif name == "country" and value:
            chosen[name] = country_code(value)
        elif value:
            chosen[name] = value
    return {"set": chosen, "add_tags": split_list(text(form, "add_tags")),
            "remove_tags": split_list(text(form, "remove_tags"))}


def _context(form: FormData) -> dict[str, Any]:
    query = BoardQuery.parse(form)
    return {"ids": selected_ids(form), "all_matching": form.get("all_matching") == "1",
            "filter_fields": [*query.filters(), ("sort", query.sort)], "statuses": STATUSES,
            "values": {name: text(form, name) for name in (*SET_FIELDS, "add_tags", "remove_tags")}}


async def _unavailable(page: Page, method: str, path: str) -> Response | None:
    if await page.api.has_route(method, path):
        return None
    return page.render("error.html", {"title": "Not available yet",
                                      "message": f"The API does not serve {method} {path} yet."}, status=501)


@router.post("/edit")
async def bulk_edit(page: PageDep) -> Response:
    """The bulk edit form for the selection; with `confirm`, POST /v1/customers/bulk-update."""
    form = await page.form()
    missing = await _unavailable(page, "POST", "/v1/customers/bulk-update")
    if missing:
        return missing
    context = _context(form)
    errors = selection_errors(form)
    context["names"] = await names_of(page, context["ids"])
    if errors or form.get("confirm") != "1":
        return page.render("bulk_edit.html", context, errors=errors, status=422 if errors else 200)
    body = {**target(form), **changes(form)}
    if body.get("customer_ids") is not None:
        body["ids"] = body.pop("customer_ids")
    if text(form, "reason"):
        body["reason"] = text(form, "reason")
    result = await page.api.post("/v1/customers/bulk-update", json=body)
    if not result.ok:
        return page.render("bulk_edit.html", context, errors=errors_from(result, EDIT_FIELDS),
                           status=result.status)
    return await _results(page, "Bulk edit", result.body)


async def _results(page: Page, title: str, body: dict[str, Any]) -> Response:
    failures = [r for r in body.get("results", []) if not r.get("ok")]
    names = await names_of(page, [r["id"] for r in failures], limit=50)
    return page.render("bulk_results.html", {"title": title, "outcome": body, "failures": failures,
                                             "names": names, "nav": "customers"})


async def _matching_ids(page: Page, form: FormData) -> tuple[list[str], FormErrors]:
    """Every id the board's filter matches (bulk delete takes ids), up to MAX_DELETE."""
    query = BoardQuery.parse(form)
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < MAX_DELETE:
        params = [*query.filters(), ("sort", "created_at"), ("limit", "1000")]
        result = await page.api.get("/v1/customers", params=params + ([("cursor", cursor)] if cursor else []))
        if not result.ok:
            return [], errors_from(result)
        ids += [card["id"] for card in result.body["items"]]
        cursor = result.body.get("next_cursor")
        if not cursor:
            break
    return ids[:MAX_DELETE], FormErrors()


@router.post("/delete")
async def bulk_delete(page: PageDep) -> Response:
    """Confirm, then POST /v1/customers/bulk-delete."""
    form = await page.form()
    missing = await _unavailable(page, "POST", "/v1/customers/bulk-delete")
    if missing:
        return missing
    errors = selection_errors(form)
    ids = selected_ids(form)
    if not errors and form.get("all_matching") == "1":
        ids, errors = await _matching_ids(page, form)
    names = await names_of(page, ids, limit=50)
    context = {"cards": [{"name": names.get(i, i), "currency": "", "status": ""} for i in ids[:50]],
               "count": len(ids), "ids": ids, "action": f"{CONSOLE}/bulk/delete", "filter_fields": [],
               "require_reason": False}
    if errors or form.get("confirm") != "1":
        return page.render("confirm_delete.html", context, errors=errors, status=422 if errors else 200)
    body: dict[str, Any] = {"ids": ids}
    if text(form, "reason"):
        body["reason"] = text(form, "reason")
    result = await page.api.post("/v1/customers/bulk-delete", json=body)
    if not result.ok:
        return page.render("confirm_delete.html", context, errors=errors_from(result, {"ids", "reason"}),
                           status=result.status)
    return await _results(page, "Bulk delete", result.body)


@router.get("/upload")
async def upload_form(page: PageDep) -> Response:
    """Choose a CSV (or JSON) file and a mode."""
    missing = await _unavailable(page, "POST", "/v1/customers/bulk")
    return missing or page.render("bulk_upload.html", {"mode": "all_or_nothing", "nav": "customers"})


@router.post("/upload")
async def upload(page: PageDep) -> Response:
    """POST /v1/customers/bulk with the file; every row's result (or only the failed ones)."""
    # the file is read only for a live token: a stranger's upload is never spooled
    if await get_runtime(page.request).tokens.authenticate(page.session.token) is None:
        raise SignInRequired("the session's token is no longer valid")
    form = await page.form()
    upload_file = form.get("file")
    file = upload_file if isinstance(upload_file, UploadFile) else None
    mode = "best_effort" if form.get("mode") == "best_effort" else "all_or_nothing"
    errors = FormErrors()
    content = await file.read() if file is not None else b""
    if not content:
        errors.add("file", "Choose a CSV file with a header row (name and currency are required).")
        return page.render("bulk_upload.html", {"mode": mode, "nav": "customers"}, errors=errors, status=422)
    name = (file.filename or "").lower() if file else ""
    kind = "application/json" if name.endswith(".json") else "text/csv"
    only_errors = form.get("only_errors") == "on"
    result = await page.api.post("/v1/customers/bulk", content=content, headers={
        "Content-Type": kind, **page.reason_headers(form),
    }, params={"mode": mode, "results": "errors" if only_errors else "all"})
    body = result.body if isinstance(result.body, dict) else None
    if body is None or "results" not in body:
        return page.render("bulk_upload.html", {"mode": mode, "nav": "customers"},
                           errors=errors_from(result, {"file"}), status=result.status)
    rows = body["results"]
    return page.render("bulk_upload.html", {
        "mode": mode, "nav": "customers", "outcome": body, "rows": rows[:SHOWN_ROWS],
        "more_rows": max(0, len(rows) - SHOWN_ROWS), "filename": file.filename if file else "",
    }, status=200)
