"""Invoices and payments across customers (`/console/invoices`, `/console/payments`), with the PDF and CSV."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from gateway.auth.roles import Permission
from gateway.web.customer_form import utc_instant
from gateway.web.forms import FormErrors, errors_from
from gateway.web.list_pages import (
    PAGE_SIZE,
    CustomerFilter,
    ListQuery,
    customer_names,
    filter_errors,
    resolve_customer,
)
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, forbidden_page

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
INVOICE_FILTERS = ("customer", "status", "period_from", "period_to")
INVOICE_STATUSES = (("", "Any status"), ("open", "open"), ("overdue", "overdue"), ("paid", "paid"),
                    ("void", "void"))
PAYMENT_FILTERS = ("customer", "method", "status", "kind", "since", "until")
PAYMENT_METHODS = (("", "Any method"), ("manual", "Manual"), ("bank_transfer", "Bank transfer"),
                   ("paypal", "PayPal"), ("card", "Card"), ("other", "Other"))
PAYMENT_STATUSES = (("", "Any status"), ("completed", "completed"), ("pending", "pending"),
                    ("cancelled", "cancelled"))
PAYMENT_KINDS = (("", "Any kind"), ("payment", "payment"), ("refund", "refund"), ("adjustment", "adjustment"))
EMPTY: dict[str, Any] = {"items": [], "next_cursor": None, "total": 0}


async def _listed(page: Page, path: str, params: dict[str, Any], errors: FormErrors,
                  known: tuple[str, ...]) -> tuple[dict[str, Any], str | None, FormErrors]:
    """One page of an API list (the page's own errors first; a 5xx said as unavailable)."""
    if errors:
        return EMPTY, None, errors
    result = await page.api.get(path, params={k: v for k, v in params.items() if v})
    if result.ok:
        return result.body, None, errors
    if result.status >= 500:
        return EMPTY, result.message, errors
    return EMPTY, None, errors_from(result, known)


def _invoice_params(query: ListQuery, customer: CustomerFilter) -> dict[str, Any]:
    return {"customer_id": customer.customer_id, "status": query.get("status"),
            "period_from": query.get("period_from"), "period_to": query.get("period_to")}


def _payment_params(query: ListQuery, customer: CustomerFilter) -> dict[str, Any]:
    return {"customer_id": customer.customer_id, "method": query.get("method"), "status": query.get("status"),
            "kind": query.get("kind"), "since": utc_instant(query.get("since")),
            "until": utc_instant(query.get("until"))}


@dataclass(frozen=True)
class BillingList:
    """A console list over an API list: its name (nav, page and CSV), API path, filters and template."""

    name: str
    api_path: str
    filters: tuple[str, ...]
    params: Callable[[ListQuery, CustomerFilter], dict[str, Any]]
    template: str
    choices: dict[str, Any]

    @property
    def page_path(self) -> str:
        """The console page's path."""
        return f"{CONSOLE}/{self.name}"


INVOICES = BillingList("invoices", "/v1/invoices", INVOICE_FILTERS, _invoice_params, "invoices.html",
                       {"statuses": INVOICE_STATUSES})
PAYMENTS = BillingList("payments", "/v1/payments", PAYMENT_FILTERS, _payment_params, "payments.html",
                       {"methods": PAYMENT_METHODS, "statuses": PAYMENT_STATUSES, "kinds": PAYMENT_KINDS})


async def _list_page(page: Page, spec: BillingList) -> Response:
    """One page of the list as filtered, with the customers' names and the CSV link."""
    query = ListQuery.parse(page, spec.page_path, spec.filters)
    customer = await resolve_customer(page, query.get("customer"))
    params = {**spec.params(query, customer), "cursor": query.cursor, "limit": PAGE_SIZE}
    data, unavailable, errors = await _listed(page, spec.api_path, params, filter_errors(customer),
                                              spec.filters)
    names = await customer_names(page, {i["customer_id"] for i in data["items"]})
    return page.render(spec.template, {
        "nav": spec.name, "query": query, "customer": customer, "data": data, "unavailable": unavailable,
        "names": names, **spec.choices, "csv_link": f"{spec.page_path}.csv?{page.request.url.query}",
    }, errors=errors, status=422 if errors else 200)


async def _list_csv(page: Page, spec: BillingList) -> Response:
    """The whole list as filtered, as the API's CSV."""
    query = ListQuery.parse(page, spec.page_path, spec.filters)
    customer = await resolve_customer(page, query.get("customer"))
    return await _download(page, spec.api_path, {**spec.params(query, customer), "format": "csv"},
                           f"{spec.name}.csv", customer)


@router.get("/invoices")
async def invoices(page: PageDep) -> Response:
    """Invoices newest first: by customer, status and the period they bill."""
    return await _list_page(page, INVOICES)


@router.get("/invoices.csv")
async def invoices_csv(page: PageDep) -> Response:
    """The filtered invoices as the API's CSV."""
    return await _list_csv(page, INVOICES)


@router.get("/invoices/{invoice_id}.pdf")
async def invoice_pdf(page: PageDep, invoice_id: str) -> Response:
    """The invoice's PDF (the API's document)."""
    result = await page.api.get(f"/v1/invoices/{invoice_id}.pdf")
    if not result.ok:
        return page.render("error.html", {"title": "Invoice not available", "message": result.message},
                           status=result.status)
    return Response(result.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="invoice-{invoice_id}.pdf"'})


@router.get("/payments")
async def payments(page: PageDep) -> Response:
    """Payments newest first across customers: by customer, method, status, kind and time recorded."""
    if not page.can(Permission.PAYMENTS):
        return forbidden_page(page.request, "Payments are for billing staff (roles billing and admin).")
    return await _list_page(page, PAYMENTS)


@router.get("/payments.csv")
async def payments_csv(page: PageDep) -> Response:
    """The filtered payments as the API's CSV."""
    return await _list_csv(page, PAYMENTS)


async def _download(page: Page, path: str, params: dict[str, Any], filename: str,
                    customer: CustomerFilter) -> Response:
    if customer.error:
        return page.render("error.html", {"title": "Export failed", "message": customer.error}, status=422)
    result = await page.api.get(path, params={k: v for k, v in params.items() if v})
    if not result.ok:
        return page.render("error.html", {"title": "Export failed", "message": result.message},
                           status=result.status)
    return Response(result.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
