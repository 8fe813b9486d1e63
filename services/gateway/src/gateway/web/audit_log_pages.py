"""The global audit log (`/console/audit`, admins, as `GET /v1/audit`): every customer's events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from gateway.auth.roles import Permission
from gateway.web.audit_pages import pretty
from gateway.web.audit_view import diff_rows, event_types, human, known_types
from gateway.web.customer_form import utc_instant
from gateway.web.forms import FormErrors, errors_from
from gateway.web.list_pages import PAGE_SIZE, CustomerFilter, ListQuery, customer_names, resolve_customer
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, forbidden_page

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
FILTERS = ("customer", "actor", "type", "since", "until")


async def _api_query(page: Page, query: ListQuery) -> tuple[str, dict[str, Any], CustomerFilter, FormErrors]:
    """The API route (the global log, or one customer's) and its parameters; errors for bad filters."""
    errors = FormErrors()
    customer = await resolve_customer(page, query.get("customer"))
    if customer.error:
        errors.add("customer", customer.error)
    types, unknown = event_types(query.get("type"))
    if unknown:
        errors.add("type", f"no event type {', '.join(repr(u) for u in unknown)}; for example"
                           " 'customer updated' or 'status changed' (see the suggestions)")
    since, until = utc_instant(query.get("since")), utc_instant(query.get("until"))
    params: dict[str, Any] = {"actor": query.get("actor"), "type": types, "since": since, "until": until}
    path = f"/v1/customers/{customer.customer_id}/audit" if customer.customer_id else "/v1/audit"
    return path, {k: v for k, v in params.items() if v}, customer, errors


@router.get("/audit")
async def audit_log(page: PageDep) -> Response:
    """The whole audit log, newest first, with the filters of `GET /v1/audit` and a customer."""
    if not page.can(Permission.TOKENS_MANAGE):
        return forbidden_page(page.request, "The whole audit log is for admins (each card has its own).")
    query = ListQuery.parse(page, f"{CONSOLE}/audit", FILTERS)
    path, params, customer, errors = await _api_query(page, query)
    data: dict[str, Any] = {"items": [], "next_cursor": None, "total": 0}
    unavailable = None
    if not errors:
        cursor = {"cursor": query.cursor} if query.cursor else {}
        result = await page.api.get(path, params={**params, **cursor, "limit": PAGE_SIZE})
        if result.ok:
            data = result.body
        elif result.status >= 500:
            unavailable = result.message
        else:
            errors = errors_from(result, FILTERS)
    names = await customer_names(page, {e["customer_id"] for e in data["items"] if e.get("customer_id")})
    return page.render("audit_log.html", {
        "nav": "audit", "query": query, "customer": customer, "data": data, "unavailable": unavailable,
        "names": names, "diff_rows": diff_rows, "pretty": pretty, "human": human,
        "known_types": known_types(),
        "csv_link": f"{CONSOLE}/audit.csv?{page.request.url.query}",
    }, errors=errors, status=422 if errors else 200)


@router.get("/audit.csv")
async def audit_log_csv(page: PageDep) -> Response:
    """The filtered log as the API's CSV."""
    query = ListQuery.parse(page, f"{CONSOLE}/audit", FILTERS)
    path, params, _customer, errors = await _api_query(page, query)
    if errors:
        return page.render("error.html", {"title": "Export failed", "message": "; ".join(
            m for ms in errors.fields.values() for m in ms)}, status=422)
    result = await page.api.get(path, params={**params, "format": "csv"})
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    return Response(result.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit.csv"'})
