"""What the cross-customer list pages share: the filter form's values, « Previous / Next », the customer."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from gateway.web.forms import FormErrors
from gateway.web.pages import Page

BACK_KEPT = 20  # pages « Previous can walk back through (the URL stays short)
PAGE_SIZE = 25


@dataclass
class ListQuery:
    """A list page's filters (as typed), its cursor and the trail of cursors before it."""

    path: str
    filters: dict[str, str]
    cursor: str = ""
    back: str = ""  # the cursors of the pages before, "~"-joined ("^" the first page)

    @classmethod
    def parse(cls, page: Page, path: str, names: tuple[str, ...]) -> ListQuery:
        """The query string's filters (blank ones left out), cursor and trail."""
        params = page.request.query_params
        filters = {n: params.get(n, "").strip() for n in names if params.get(n, "").strip()}
        return cls(path, filters, params.get("cursor", "").strip(), params.get("back", "").strip())

    def get(self, name: str) -> str:
        """One filter as typed ("" when not given)."""
        return self.filters.get(name, "")

    def link(self, cursor: str = "", back: str = "") -> str:
        """This list with the same filters at another cursor."""
        params = [*self.filters.items(), *(("cursor", cursor),) * bool(cursor),
                  *(("back", back),) * bool(back)]
        return f"{self.path}?{urlencode(params)}" if params else self.path

    def next_link(self, next_cursor: str | None) -> str | None:
        """The next page, remembering this one for « Previous."""
        if not next_cursor:
            return None
        pages = [*(self.back.split("~") if self.back else []), self.cursor or "^"][-BACK_KEPT:]
        return self.link(next_cursor, "~".join(pages))

    def previous_link(self) -> str | None:
        """The page before this one (None on the first page)."""
        if not self.cursor:
            return None
        pages = self.back.split("~") if self.back else []
        before = pages.pop() if pages else "^"
        return self.link("" if before == "^" else before, "~".join(pages))

    def first_link(self) -> str:
        """The first page with the same filters."""
        return self.link()


@dataclass
class CustomerFilter:
    """The customer filter as typed: an id, or a name the board's search finds exactly once."""

    typed: str = ""
    customer_id: str | None = None
    name: str | None = None
    error: str | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)


async def resolve_customer(page: Page, typed: str) -> CustomerFilter:
    """An id is taken as it is; a name must match one customer (else the choices are offered)."""
    out = CustomerFilter(typed=typed)
    if not typed:
        return out
    try:
        out.customer_id = str(uuid.UUID(typed))
    except ValueError:
        found = await page.api.get("/v1/customers", params={"q": typed, "limit": 10})
        items = found.body.get("items", []) if found.ok else []
        exact = [c for c in items if c["name"].casefold() == typed.casefold()]
        matches = exact or items
        if len(matches) == 1:
            out.customer_id, out.name = str(matches[0]["id"]), matches[0]["name"]
        elif not matches:
            out.error = f"no customer matches {typed!r}"
        else:
            out.error = f"{len(matches)} customers match {typed!r}: pick one"
            out.choices = matches
        return out
    card = await page.api.get(f"/v1/customers/{out.customer_id}")
    out.name = card.body["name"] if card.ok else None
    return out


async def customer_names(page: Page, ids: set[str], limit: int = 50) -> dict[str, str]:
    """Names of the customers a page lists (unknown or deleted ones are left out)."""
    wanted = [i for i in ids if i][:limit]

    async def one(customer_id: str) -> tuple[str, str | None]:
        result = await page.api.get(f"/v1/customers/{customer_id}")
        return customer_id, result.body["name"] if result.ok else None

    found = await asyncio.gather(*(one(i) for i in wanted))
    return {i: name for i, name in found if name}


def filter_errors(customer: CustomerFilter) -> FormErrors:
    """The customer filter's error beside its field."""
    errors = FormErrors()
    if customer.error:
        errors.add("customer", customer.error)
    return errors
