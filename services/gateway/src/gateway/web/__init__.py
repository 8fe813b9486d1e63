"""The web pages: the operator console (`/console/`) and the customer portal (`/portal/`).

Server-rendered (Jinja2) over the gateway's own HTTP API, called in-process with the
browser's token; htmx (vendored) and one small script; no build step.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from gateway.web import (
    alerts_pages,
    audit_log_pages,
    audit_pages,
    auth_pages,
    billing_pages,
    board_pages,
    bulk_pages,
    card_actions,
    card_pages,
    contact_pages,
    demo_call_pages,
    message_pages,
    payment_pages,
    portal_account_pages,  # adds its pages to portal_pages.router (imported first: routes are copied below)
    portal_pages,
    settings_pages,
    signup_pages,  # the console's approve/reject, and the portal's form (on portal_pages.router)
    static_files,
)

assert portal_account_pages.router is portal_pages.router
router = APIRouter(include_in_schema=False)
for _module in (static_files, auth_pages, board_pages, card_pages, card_actions, contact_pages, audit_pages,
                settings_pages, message_pages, bulk_pages, signup_pages, portal_pages, payment_pages,
                alerts_pages, audit_log_pages, billing_pages, demo_call_pages):
    router.include_router(_module.router)


@router.get("/")
async def home() -> RedirectResponse:
    """The console's board."""
    return RedirectResponse("/console/", status_code=307)
