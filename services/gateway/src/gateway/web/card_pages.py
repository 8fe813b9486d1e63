"""The customer card: new customer, the Main and Edit tabs, status change, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Query, Response

from gateway.web.api_client import ApiResult
from gateway.web.customer_form import (
    FIELDS,
    STATUSES,
    blank_card,
    card_from_form,
    card_values,
    new_customer,
    utc_instant,
)
from gateway.web.forms import changed_fields, checked, errors_from, text, toml_error_line
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, redirect
from gateway.web.summary_charts import summary_charts

router = APIRouter(prefix=f"{CONSOLE}/customers", route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
PERIODS = ("live", "daily", "weekly", "monthly")
LIVE_INTERVAL_MS = 5000  # the Live view refreshes itself this often (static/live.js)


async def require_reason(page: Page) -> bool:
    """Whether the audit setting asks a reason for every change."""
    result = await page.api.get("/v1/settings/audit")
    return bool(result.ok and result.body.get("require_reason"))


def not_found(page: Page, result: ApiResult) -> Response:
    """The card could not be read: say why."""
    return page.render("error.html", {"title": "Customer not available", "message": result.message},
                       status=result.status)


async def load_card(page: Page, customer_id: str) -> ApiResult:
    """GET the card."""
    return await page.api.get(f"/v1/customers/{customer_id}")


async def card_header(page: Page, card: dict[str, Any]) -> dict[str, Any]:
    """Balance and channels in use for the header (when reporting answers)."""
    cid = card["id"]
    balance, live = await asyncio.gather(
        page.api.get(f"/v1/customers/{cid}/balance"),
        page.api.get(f"/v1/customers/{cid}/summary", params={"period": "live"}),
    )
    return {
        "balance": balance.body if balance.ok else None,
        "channels_in_use": live.body.get("channels_in_use") if live.ok else None,
    }


@router.get("/new")
async def new_form(page: PageDep) -> Response:
    """An empty customer form."""
    return page.render("customer_new.html", {
        "card": blank_card(), "statuses": STATUSES, "require_reason": await require_reason(page),
    })


@router.post("/new")
async def create(page: PageDep) -> Response:
    """POST /v1/customers; the card on success, the form with the API's errors otherwise."""
    form = await page.form()
    result = await page.api.post("/v1/customers", json=new_customer(form), headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{result.body['id']}?created=1")
    errors = errors_from(result, FIELDS)
    return page.render("customer_new.html", {
        "card": card_from_form(form, blank_card()), "statuses": STATUSES,
        "require_reason": await require_reason(page), "reason": text(form, "reason"),
        "toml_error": toml_error_line(errors),
    }, errors=errors, status=result.status)


async def latest_firings(page: Page, customer_id: str) -> list[dict[str, Any]] | None:
    """The customer's latest alert firings (None: the role may not see alerts, or none answer)."""
    if not page.can_manage_alerts:
        return None
    result = await page.api.get("/v1/alerts/firings", params={"customer_id": customer_id, "limit": 3})
    return list(result.body["items"]) if result.ok else None


def summary_span(period: str, day_from: str | None, day_to: str | None) -> dict[str, str]:
    """The summary's chosen range (`from`, `to`: UTC days; the API checks them), none for Live."""
    if period == "live":
        return {}
    return {k: v.strip() for k, v in (("from", day_from), ("to", day_to)) if v and v.strip()}


async def main_context(page: Page, card: dict[str, Any], period: str = "daily",
                       span: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the Main tab shows besides the card."""
    cid = card["id"]
    period = period if period in PERIODS else "daily"
    span = summary_span(period, (span or {}).get("from"), (span or {}).get("to"))
    summary, invoices, reason, firings = await asyncio.gather(
        page.api.get(f"/v1/customers/{cid}/summary", params={"period": period, **span}),
        page.api.get("/v1/invoices", params={"customer_id": cid, "limit": 20}),
        require_reason(page),
        latest_firings(page, cid),
    )
    return {
        "card": card, "tab": "main", **await card_header(page, card), "statuses": STATUSES,
        **summary_context(card, period, summary), "span": span,
        "summary_query": urlencode({"period": period, **span}),
        "invoices": invoices.body["items"] if invoices.ok else [],
        "can_invoice": page.role in ("billing", "admin"),
        "blocks_api": await page.api.has_route("POST", "/v1/customers/{customer_id}/number-blocks"),
        "require_reason": reason, "notice": page.request.query_params.get("notice"),
        "alert_firings": firings,
    }


def summary_context(card: dict[str, Any], period: str, summary: ApiResult) -> dict[str, Any]:
    """The summary, its charts and the Live view's refresh interval."""
    body = summary.body if summary.ok else None
    return {
        "period": period, "periods": PERIODS, "summary": body,
        "summary_error": None if summary.ok else summary.message,
        "charts": summary_charts(body, period, card.get("currency") or "") if body else [],
        "live_interval_ms": LIVE_INTERVAL_MS,
    }


async def main_with_errors(page: Page, customer_id: str, result: ApiResult, known: set[str],
                           *, form_name: str, values: dict[str, Any] | None = None) -> Response:
    """The Main tab again, with one of its forms' errors beside that form's fields."""
    loaded = await load_card(page, customer_id)
    if not loaded.ok:
        return not_found(page, loaded)
    context = await main_context(page, loaded.body)
    context |= {"failed_form": form_name, "values": values or {}}
    return page.render("card_main.html", context, errors=errors_from(result, known), status=result.status)


@router.get("/{customer_id}")
async def main_tab(page: PageDep, customer_id: str, period: str = "daily",
                   day_from: Annotated[str | None, Query(alias="from")] = None,
                   day_to: Annotated[str | None, Query(alias="to")] = None) -> Response:
    """The Main tab: header, status, contacts, number blocks, approved CLIs, summary (of a range)."""
    result = await load_card(page, customer_id)
    if not result.ok:
        return not_found(page, result)
    context = await main_context(page, result.body, period, {"from": day_from or "", "to": day_to or ""})
    if page.request.query_params.get("dial") is not None:
        cli = page.request.query_params.get("cli") or None
        dial = await page.api.get(f"/v1/customers/{customer_id}/dial-permission",
                                  params={"cli": cli} if cli else None)
        context |= {"dial": dial.body if dial.ok else None, "dial_error": None if dial.ok else dial.message,
                    "dial_cli": cli or ""}
    return page.render("card_main.html", context)


@router.get("/{customer_id}/live")
async def live_view(page: PageDep, customer_id: str) -> Response:
    """The Live summary's charts and table alone: what the Live view swaps in when it refreshes."""
    card, live = await asyncio.gather(
        load_card(page, customer_id),
        page.api.get(f"/v1/customers/{customer_id}/summary", params={"period": "live"}),
    )
    if not card.ok:
        return not_found(page, card)
    if not live.ok:
        return page.render("error.html", {"title": "Summaries are not available", "message": live.message},
                           status=live.status)
    context = {"card": card.body, "can_invoice": False, **summary_context(card.body, "live", live)}
    return page.render("card_summary_body.html", context)


@router.get("/{customer_id}/edit")
async def edit_tab(page: PageDep, customer_id: str) -> Response:
    """The Edit tab: Basic, Config and Verification groups."""
    result = await load_card(page, customer_id)
    if not result.ok:
        return not_found(page, result)
    return page.render("card_edit.html", {
        "card": result.body, "tab": "edit", **await card_header(page, result.body),
        "require_reason": await require_reason(page), "saved": page.request.query_params.get("saved"),
    })


@router.post("/{customer_id}/edit")
async def save_edit(page: PageDep, customer_id: str) -> Response:
    """PATCH only what changed, with If-Match: the version the form was opened at."""
    form = await page.form()
    current = await load_card(page, customer_id)
    if not current.ok:
        return not_found(page, current)
    changes = changed_fields(current.body, card_values(form))
    version = text(form, "version") or str(current.body["version"])
    result: ApiResult | None = None
    if changes:
        result = await page.api.patch(f"/v1/customers/{customer_id}", json=changes,
                                      headers={"If-Match": f'"{version}"', **page.reason_headers(form)})
        if result.ok:
            return redirect(f"{CONSOLE}/customers/{customer_id}/edit?saved=1")
    elif version != str(current.body["version"]):
        return redirect(f"{CONSOLE}/customers/{customer_id}/edit")
    else:
        return redirect(f"{CONSOLE}/customers/{customer_id}/edit?saved=0")
    errors = errors_from(result, FIELDS)
    shown = {**card_from_form(form, current.body), "version": version}
    return page.render("card_edit.html", {
        "card": shown, "tab": "edit", **await card_header(page, current.body),
        "require_reason": await require_reason(page), "reason": text(form, "reason"),
        "toml_error": toml_error_line(errors),
    }, errors=errors, status=result.status)


@router.post("/{customer_id}/status")
async def change_status(page: PageDep, customer_id: str) -> Response:
    """POST /v1/customers/{id}/status with the status, `until` for penalty, and the reason."""
    form = await page.form()
    body: dict[str, Any] = {"status": text(form, "status")}
    until = utc_instant(text(form, "until") or None)
    if until:
        body["until"] = until
    if text(form, "reason"):
        body["reason"] = text(form, "reason")
    result = await page.api.post(f"/v1/customers/{customer_id}/status", json=body)
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=status")
    return await main_with_errors(page, customer_id, result, {"status", "until", "reason"},
                                  form_name="status", values={"status": body["status"]})


@router.get("/{customer_id}/delete")
async def confirm_delete(page: PageDep, customer_id: str) -> Response:
    """Ask before deleting."""
    result = await load_card(page, customer_id)
    if not result.ok:
        return not_found(page, result)
    return page.render("confirm_delete.html", {
        "cards": [result.body], "action": f"{CONSOLE}/customers/{customer_id}/delete",
        "require_reason": await require_reason(page), "ids": [customer_id],
    })


@router.post("/{customer_id}/delete")
async def delete(page: PageDep, customer_id: str) -> Response:
    """DELETE /v1/customers/{id}."""
    form = await page.form()
    erase = checked(form, "erase")
    reason = text(form, "reason")
    if erase and not reason:
        result = ApiResult(422, {"error": {"code": "validation_error", "message": "an erasure needs a reason",
                                           "details": [{"field": "reason", "message": "required"}]}},
                           httpx.Headers())
    else:
        result = await page.api.delete(f"/v1/customers/{customer_id}", headers=page.reason_headers(form))
    if result.ok and erase:  # product.md section 15: its keys are destroyed
        result = await page.api.post(f"/v1/customers/{customer_id}/erase", json={"reason": reason})
        if result.ok:
            return redirect(f"{CONSOLE}/?deleted=1&erased=1")
    elif result.ok:
        return redirect(f"{CONSOLE}/?deleted=1")
    card = await load_card(page, customer_id)
    return page.render("confirm_delete.html", {
        "cards": [card.body] if card.ok else [], "action": f"{CONSOLE}/customers/{customer_id}/delete",
        "require_reason": await require_reason(page), "ids": [customer_id],
    }, errors=errors_from(result, {"reason"}), status=result.status)
