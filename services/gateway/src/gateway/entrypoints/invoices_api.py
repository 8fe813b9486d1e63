"""Invoice documents over HTTP: settings, void, credit notes, PDF and HTML (product.md section 13)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from shared.contracts.invoices import (
    CreditNote,
    CreditNoteIn,
    CreditNotePage,
    Invoice,
    InvoiceSettings,
    InvoiceSettingsIn,
    InvoiceSubjects,
    VoidInvoiceIn,
)
from shared.errors import ErrorCode

from gateway.auth.roles import Permission, Role
from gateway.dependencies import Caller, caller
from gateway.entrypoints.reporting_api import _ask, _json, role_in
from gateway.errors import COMMON_ERRORS, CONFLICT_DOC, NOT_FOUND_DOC, ApiError

router = APIRouter(tags=["invoices"], responses=COMMON_ERRORS)

Billing = Depends(role_in(Role.BILLING, Role.ADMIN))
PDF_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
          "description": "The invoice as a PDF document."},
    404: NOT_FOUND_DOC,
}
HTML_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "Printable HTML."},
    404: NOT_FOUND_DOC,
}


def _billing(who: Caller) -> None:  # the routes' Billing dependency already refused others first
    if who.principal.role not in (Role.BILLING, Role.ADMIN):
        raise ApiError(ErrorCode.FORBIDDEN, f"role '{who.principal.role}' may not do this"
                       " (needs one of: billing, admin)")


@router.get("/v1/settings/invoices", response_model=InvoiceSettings, dependencies=[Billing],
            summary="Invoice settings")
async def get_settings(request: Request) -> Response:
    """Numbering (prefix, next number), due days and the carrier's details on every document."""
    return _json(await _ask(request, InvoiceSubjects.GET_SETTINGS, {}))


@router.put("/v1/settings/invoices", response_model=InvoiceSettings, responses={409: CONFLICT_DOC},
            summary="Change the invoice settings", dependencies=[Billing])
async def put_settings(
    request: Request, body: InvoiceSettingsIn,
    who: Annotated[Caller, Depends(caller(Permission.CUSTOMERS_READ))],
) -> Response:
    """Fields left out keep their value; `next_number` may only move up (numbers are never reused)."""
    _billing(who)
    return _json(await _ask(request, InvoiceSubjects.SET_SETTINGS, {
        "meta": who.meta(), "settings": body.model_dump(mode="json", exclude_unset=True)}))


@router.post("/v1/invoices/{invoice_id}/void", response_model=Invoice,
             responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC}, summary="Void an invoice",
             dependencies=[Billing])
async def void_invoice(
    request: Request, invoice_id: UUID, body: VoidInvoiceIn,
    who: Annotated[Caller, Depends(caller(Permission.CUSTOMERS_READ))],
) -> Response:
    """Void an invoice nothing was paid on, with a reason (billing, admin); its days stay invoiced."""
    _billing(who)
    return _json(await _ask(request, InvoiceSubjects.VOID, {
        "meta": who.meta(), "invoice_id": invoice_id, "reason": body.reason}))


@router.post("/v1/invoices/{invoice_id}/credit-notes", status_code=201, response_model=CreditNote,
             responses={404: NOT_FOUND_DOC, 409: CONFLICT_DOC}, summary="Issue a credit note",
             dependencies=[Billing])
async def issue_credit_note(
    request: Request, invoice_id: UUID, body: CreditNoteIn,
    who: Annotated[Caller, Depends(caller(Permission.CUSTOMERS_READ))],
) -> Response:
    """A numbered credit note (`CN-`) against the invoice: credit on the customer's balance."""
    _billing(who)
    data = await _ask(request, InvoiceSubjects.CREDIT_NOTE, {
        "meta": who.meta(), "invoice_id": invoice_id, "amount": str(body.amount), "reason": body.reason})
    return _json(data, status_code=201)


@router.get("/v1/invoices/{invoice_id}/credit-notes", response_model=CreditNotePage,
            dependencies=[Depends(role_in(*Role))], summary="Credit notes of an invoice")
async def list_credit_notes(request: Request, invoice_id: UUID) -> Response:
    """The invoice's credit notes, newest first."""
    return _json(await _ask(request, InvoiceSubjects.CREDIT_NOTES, {"invoice_id": invoice_id}))


@router.get("/v1/credit-notes", response_model=CreditNotePage, dependencies=[Depends(role_in(*Role))],
            summary="Credit notes")
async def credit_notes(
    request: Request, customer_id: UUID | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """Credit notes newest first, of one customer or all."""
    body = {"customer_id": customer_id, "limit": limit}
    return _json(await _ask(request, InvoiceSubjects.CREDIT_NOTES, body))


async def document(request: Request, invoice_id: UUID, fmt: str, customer_id: UUID | None = None) -> Response:
    """The rendered invoice (PDF or HTML), inline, named by its number."""
    reply = json.loads(await _ask(request, InvoiceSubjects.DOCUMENT, {
        "invoice_id": invoice_id, "format": fmt, "customer_id": customer_id}))
    content = base64.b64decode(reply["content"]) if fmt == "pdf" else reply["content"].encode()
    return Response(content, media_type=reply["media_type"], headers={
        "Content-Disposition": f'inline; filename="{reply["filename"]}"',
        "Cache-Control": "private, no-store"})


@router.get("/v1/invoices/{invoice_id}.pdf", responses=PDF_DOC, response_class=Response,
            dependencies=[Depends(role_in(*Role))], summary="An invoice as PDF")
async def invoice_pdf(request: Request, invoice_id: UUID) -> Response:
    """The invoice document with the carrier's details, from the carrier's template."""
    return await document(request, invoice_id, "pdf")


@router.get("/v1/invoices/{invoice_id}.html", responses=HTML_DOC, response_class=Response,
            dependencies=[Depends(role_in(*Role))], summary="An invoice as printable HTML")
async def invoice_html(request: Request, invoice_id: UUID) -> Response:
    """The same document as HTML, for the browser's print."""
    return await document(request, invoice_id, "html")
