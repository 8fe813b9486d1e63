"""The card's Audit log tab (timeline, each entry's difference side by side) and its As-of tab."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.web.audit_view import diff_rows, event_types, human, known_types
from gateway.web.card_pages import card_header, load_card, not_found
from gateway.web.customer_form import utc_instant
from gateway.web.forms import FormErrors, errors_from
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page

router = APIRouter(prefix=f"{CONSOLE}/customers/{{customer_id}}", route_class=ConsoleRoute,
                   include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
AUDIT_FIELDS = ("since", "until", "actor", "type", "limit", "cursor")


def pretty(value: Any) -> str:
    """A JSON value as indented text."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@router.get("/audit")
async def audit_tab(request: Request, page: PageDep, customer_id: str) -> Response:
    """The customer's audit log, newest first, filtered by actor, type and time."""
    loaded = await load_card(page, customer_id)
    if not loaded.ok:
        return not_found(page, loaded)
    query = _api_query(request)
    types, unknown = event_types(query.pop("type", ""))
    if unknown:  # refused here, naming what the filter takes, rather than an empty log
        errors = FormErrors()
        errors.add("type", f"no event type {', '.join(repr(u) for u in unknown)}; for example"
                           " 'customer updated' or 'status changed' (see the suggestions)")
        header = await card_header(page, loaded.body)
        return _render_audit(request, page, loaded.body, {}, errors, header, 422)
    result = await page.api.get(f"/v1/customers/{customer_id}/audit", params={**query, "type": types})
    data = result.body if result.ok else {"items": [], "next_cursor": None, "total": 0}
    return _render_audit(request, page, loaded.body, {
        "entries": data["items"], "next_cursor": data.get("next_cursor"), "total": data.get("total", 0),
        "unavailable": None if result.ok or result.status < 500 else result.message,
    }, errors_from(result, AUDIT_FIELDS), await card_header(page, loaded.body),
        200 if result.ok or result.status >= 500 else 422)


def _api_query(request: Request) -> dict[str, Any]:
    query = {k: v for k, v in request.query_params.items() if k in AUDIT_FIELDS and v}
    for name in ("since", "until"):
        if name in query:
            query[name] = utc_instant(query[name]) or ""
    return query


def _render_audit(request: Request, page: Page, card: dict[str, Any], context: dict[str, Any],
                  errors: FormErrors, header: dict[str, Any], status: int) -> Response:
    return page.render("card_audit.html", {
        "card": card, "tab": "audit", **header, "entries": [], "next_cursor": None, "total": 0,
        "unavailable": None, **context, "query": dict(request.query_params), "diff_rows": diff_rows,
        "pretty": pretty, "human": human, "known_types": known_types(),
    }, errors=errors, status=status)


@router.get("/as-of")
async def as_of_tab(page: PageDep, customer_id: str, at: str | None = None) -> Response:
    """The card as it was at an instant (UTC)."""
    loaded = await load_card(page, customer_id)
    if not loaded.ok:
        return not_found(page, loaded)
    then: dict[str, Any] | None = None
    errors = None
    if at:
        result = await page.api.get(f"/v1/customers/{customer_id}/as-of", params={"at": utc_instant(at)})
        if result.ok:
            then = result.body
        else:
            errors = errors_from(result, {"at"})
    return page.render("card_asof.html", {
        "card": loaded.body, "tab": "as-of", **await card_header(page, loaded.body),
        "at": at or "", "then": then, "pretty": pretty,
    }, errors=errors)


@router.get("/audit.csv")
async def audit_csv(request: Request, page: PageDep, customer_id: str) -> Response:
    """The audit log (with the same filters) as the API's CSV."""
    query = {k: v for k, v in _api_query(request).items() if k in AUDIT_FIELDS[:4]}
    query["type"] = event_types(query.get("type", ""))[0] or query.get("type") or []
    result = await page.api.get(f"/v1/customers/{customer_id}/audit", params={**query, "format": "csv"})
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    return Response(result.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="audit-{customer_id}.csv"'})
