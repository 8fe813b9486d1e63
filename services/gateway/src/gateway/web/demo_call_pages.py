"""Test calls (`/console/test-calls`, admins): the codes the demo's simulated switch spoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gateway.auth.roles import Permission
from gateway.web.list_pages import customer_names
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, forbidden_page

router = APIRouter(prefix=CONSOLE, route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]


@router.get("/test-calls")
async def test_calls(page: PageDep) -> Response:
    """The latest test calls and their spoken codes, as `GET /v1/demo/test-calls` answers them."""
    if not page.can(Permission.TOKENS_MANAGE):
        return forbidden_page(page.request, "Test calls and their codes are for admins, in demo mode.")
    result = await page.api.get("/v1/demo/test-calls")
    calls = result.body["items"] if result.ok else []
    names = await customer_names(page, {c["customer_id"] for c in calls})
    return page.render("test_calls.html", {
        "nav": "test-calls", "calls": calls, "names": names,
        "unavailable": None if result.ok else result.message,
    })
