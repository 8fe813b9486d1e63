"""The customer board: search, filters, sort, cursor paging, and its CSV export."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from shared.contracts.customer import SORTABLE, CustomerPage, ListCustomers, Subjects
from shared.errors import ErrorCode, details_from_pydantic

from gateway.auth.roles import Permission
from gateway.csv_export import stream_board
from gateway.dependencies import correlation_id, get_runtime, require
from gateway.errors import COMMON_ERRORS, ApiError

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=COMMON_ERRORS)

EXPORT_PAGE = 1000
MultiValue = Annotated[
    list[str] | None, Query(description="Repeat the parameter or separate values with commas.")
]
SEARCH_DOC = "Free text over name, contact names and e-mails, website, tags."
SORT_DOC = f"One of {', '.join(SORTABLE)}; a leading `-` sorts descending."
CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "The page as JSON; with `format=csv` or `Accept: text/csv`, every match as CSV."},
}


def split_values(values: list[str] | None) -> list[str] | None:
    """`?tag=a&tag=b,c` -> ["a", "b", "c"]; nothing -> None."""
    if not values:
        return None
    parts = [p.strip() for value in values for p in value.split(",") if p.strip()]
    return parts or None


def wants_csv(request: Request, fmt: str | None) -> bool:
    """`format=csv` wins; otherwise an Accept header asking for text/csv."""
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


@router.get("", response_model=CustomerPage, responses=CSV_DOC, summary="The customer board",
            dependencies=[Depends(require(Permission.CUSTOMERS_READ))])
async def list_customers(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description=SEARCH_DOC)] = None,
    status: MultiValue = None,
    tag: MultiValue = None,
    currency: MultiValue = None,
    country: MultiValue = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    sort: Annotated[str, Query(description=SORT_DOC)] = "name",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    format: Literal["json", "csv"] | None = None,  # the API's parameter name
) -> Response:
    """One page as `{"items", "next_cursor", "total"}`, or all matching rows as CSV."""
    try:
        query = ListCustomers(
            q=q, status=split_values(status), tag=split_values(tag),
            currency=split_values(currency), country=split_values(country),
            created_from=created_from, created_to=created_to, sort=sort, limit=limit, cursor=cursor,
        )
    except ValidationError as exc:
        raise ApiError(ErrorCode.VALIDATION, "the query is not valid",
                       details_from_pydantic(exc.errors(include_input=False))) from None
    customers = get_runtime(request).customers
    cid = correlation_id(request)
    if not wants_csv(request, format):
        # the customer service's errors come as `{"error":...}`: no scan of the 36 KB page for one
        data = await customers.request(Subjects.LIST, query.model_dump_json().encode(), correlation_id=cid,
                                       errors_first=True)
        return Response(data, media_type="application/json")

    export = query.model_copy(update={"limit": EXPORT_PAGE, "cursor": None})

    async def fetch(page_cursor: str | None) -> dict[str, Any]:
        body = export.model_copy(update={"cursor": page_cursor}).model_dump_json().encode()
        return dict(json.loads(await customers.request(Subjects.LIST, body, correlation_id=cid)))

    first = await fetch(None)  # before the 200 goes out, so a failure still answers an error
    return StreamingResponse(
        stream_board(first, fetch), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )
