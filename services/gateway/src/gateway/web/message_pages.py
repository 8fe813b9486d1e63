"""Send e-mail or SMS to the ticked customers (or all the filter matches), and follow delivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from starlette.datastructures import FormData

from gateway.web.board_pages import BoardQuery, selected_ids, selection_errors
from gateway.web.customer_form import multiline
from gateway.web.forms import errors_from, text
from gateway.web.list_pages import PAGE_SIZE, ListQuery, customer_names, filter_errors, resolve_customer
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
FIELDS = ("channel", "subject", "body", "customer_ids", "filter")
LIST_FILTERS = ("customer", "channel", "state")
CHANNELS = (("", "Any channel"), ("email", "E-mail"), ("sms", "SMS"))
STATES = (("", "Any state"), ("queued", "queued"), ("sending", "sending"), ("retrying", "retrying"),
          ("sent", "sent"), ("failed", "failed"))
PLACEHOLDERS = ("{{customer.name}}", "{{customer.id}}", "{{contact.name}}", "{{contact.email}}",
                "{{contact.mobile}}", "{{contact.phone}}", "{{contact.contact_type}}")


def target(form: FormData) -> dict[str, Any]:
    """`customer_ids` of the ticked rows, or the board's `filter` when 'all matching' is ticked."""
    if form.get("all_matching") == "1":
        return {"filter": BoardQuery.parse(form).filter_dict()}
    return {"customer_ids": selected_ids(form)}


async def names_of(page: Page, ids: list[str], limit: int = 20) -> dict[str, str]:
    """Names of some customers, for the page (ids the API does not know are left out)."""
    names: dict[str, str] = {}
    for customer_id in ids[:limit]:
        result = await page.api.get(f"/v1/customers/{customer_id}")
        if result.ok:
            names[customer_id] = result.body["name"]
    return names


def _context(form: FormData, channel: str) -> dict[str, Any]:
    query = BoardQuery.parse(form)
    return {
        "channel": channel, "ids": selected_ids(form), "all_matching": form.get("all_matching") == "1",
        "filter_fields": [*query.filters(), ("sort", query.sort)], "placeholders": PLACEHOLDERS,
        "subject": text(form, "subject"), "body": multiline(form, "body"),
    }


@router.post("/send")
async def send(page: PageDep, channel: str = "email") -> Response:
    """First the message form for the selection; with `confirm`, POST /v1/messages and its answer."""
    form = await page.form()
    channel = "sms" if channel == "sms" else "email"
    context = _context(form, channel)
    errors = selection_errors(form)
    if errors:
        return page.render("message_form.html", context, errors=errors, status=422)
    context["names"] = await names_of(page, context["ids"])
    if form.get("confirm") != "1":
        return page.render("message_form.html", context)
    body: dict[str, Any] = {"channel": channel, "body": context["body"], **target(form)}
    if channel == "email":
        body["subject"] = context["subject"]
    result = await page.api.post("/v1/messages", json=body, headers=page.reason_headers(form))
    if not result.ok:
        return page.render("message_form.html", context, errors=errors_from(result, FIELDS),
                           status=result.status)
    skipped = result.body.get("skipped", [])
    skipped_names = await names_of(page, [s["customer_id"] for s in skipped])
    return page.render("message_sent.html", {**context, "sent": result.body, "skipped_names": skipped_names})


@router.get("/messages")
async def sent_messages(page: PageDep) -> Response:
    """Sent messages across customers, newest first: by customer, channel and a recipient's state."""
    query = ListQuery.parse(page, f"{CONSOLE}/messages", LIST_FILTERS)
    customer = await resolve_customer(page, query.get("customer"))
    errors = filter_errors(customer)
    data: dict[str, Any] = {"items": [], "next_cursor": None, "total": 0}
    unavailable = None
    if not errors:
        params = {"channel": query.get("channel"), "state": query.get("state"),
                  "customer_id": customer.customer_id, "cursor": query.cursor, "limit": PAGE_SIZE}
        result = await page.api.get("/v1/messages", params={k: v for k, v in params.items() if v})
        if result.ok:
            data = result.body
        elif result.status >= 500:
            unavailable = result.message
        else:
            errors = errors_from(result, LIST_FILTERS)
    return page.render("messages.html", {
        "nav": "messages", "query": query, "customer": customer, "data": data, "unavailable": unavailable,
        "channels": CHANNELS, "states": STATES,
    }, errors=errors, status=422 if errors else 200)


@router.get("/messages/{message_id}")
async def delivery(page: PageDep, message_id: str) -> Response:
    """Each recipient's delivery state (and customer), a page at a time."""
    cursor = page.request.query_params.get("cursor") or None
    params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
    result = await page.api.get(f"/v1/messages/{message_id}", params=params)
    if not result.ok:
        return page.render("error.html", {"title": "Message not available", "message": result.message},
                           status=result.status)
    items = result.body["items"]
    names = await customer_names(page, {str(r["customer_id"]) for r in items if r["customer_id"]})
    return page.render("message_status.html", {"message": result.body, "nav": "messages", "names": names,
                                               "cursor": cursor})
