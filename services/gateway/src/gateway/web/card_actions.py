"""The Main tab's smaller actions: approved CLIs, number blocks, invoices, summary export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import Response as PlainResponse

from gateway.web.card_pages import PERIODS, main_with_errors, summary_span
from gateway.web.forms import text
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, redirect

router = APIRouter(prefix=f"{CONSOLE}/customers/{{customer_id}}", route_class=ConsoleRoute,
                   include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]


@router.post("/clis")
async def add_cli(page: PageDep, customer_id: str) -> Response:
    """Approve a CLI by hand (the audit log records the operator)."""
    form = await page.form()
    number = text(form, "number")
    result = await page.api.post(f"/v1/customers/{customer_id}/approved-clis", json={"number": number},
                                 headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=cli")
    return await main_with_errors(page, customer_id, result, {"number"}, form_name="cli",
                                  values={"number": number})


@router.post("/clis/remove")
async def remove_cli(page: PageDep, customer_id: str) -> Response:
    """Take a CLI off the approved list."""
    form = await page.form()
    number = text(form, "number")
    result = await page.api.delete(f"/v1/customers/{customer_id}/approved-clis/{number}",
                                   headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=cli")
    return await main_with_errors(page, customer_id, result, {"number"}, form_name="cli")


@router.post("/number-blocks")
async def assign_block(page: PageDep, customer_id: str) -> Response:
    """Assign the next free internal number block."""
    form = await page.form()
    result = await page.api.post(f"/v1/customers/{customer_id}/number-blocks", json={},
                                 headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=block")
    return await main_with_errors(page, customer_id, result, set(), form_name="blocks")


@router.post("/number-blocks/{block_id}/release")
async def release_block(page: PageDep, customer_id: str, block_id: str) -> Response:
    """Release a block."""
    form = await page.form()
    result = await page.api.delete(f"/v1/customers/{customer_id}/number-blocks/{block_id}",
                                   headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=block")
    return await main_with_errors(page, customer_id, result, set(), form_name="blocks")


@router.post("/invoices")
async def generate_invoice(page: PageDep, customer_id: str) -> Response:
    """Invoice the ticked days of the daily summary."""
    form = await page.form()
    days = [d for d in form.getlist("days") if isinstance(d, str) and d]
    body = {"days": days} if days else {}
    result = await page.api.post(f"/v1/customers/{customer_id}/invoices", json=body)
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=invoice")
    return await main_with_errors(page, customer_id, result, {"days"}, form_name="invoice")


@router.get("/summary.csv")
async def summary_csv(page: PageDep, customer_id: str, period: str = "daily",
                      day_from: Annotated[str | None, Query(alias="from")] = None,
                      day_to: Annotated[str | None, Query(alias="to")] = None) -> Response:
    """The summary (of the range chosen on the card) as the API's CSV."""
    period = period if period in PERIODS else "daily"
    span = summary_span(period, day_from, day_to)
    result = await page.api.get(f"/v1/customers/{customer_id}/summary",
                                params={"period": period, "format": "csv", **span})
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    return PlainResponse(result.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="summary-{customer_id}-{period}.csv"'})
