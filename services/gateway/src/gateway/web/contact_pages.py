"""Contacts of a customer: add, edit, remove, reset password (generated and e-mailed, or typed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from starlette.datastructures import FormData

from gateway.web.card_pages import card_header, load_card, not_found
from gateway.web.customer_form import multiline
from gateway.web.forms import FormErrors, changed_fields, checked, errors_from, split_list, text, text_or_none
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, redirect

router = APIRouter(prefix=f"{CONSOLE}/customers/{{customer_id}}", route_class=ConsoleRoute,
                   include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
FIELDS = frozenset({"name", "email", "mobile", "phone", "contact_type", "public_notes", "private_notes",
                    "ip_whitelist", "email_verified", "mobile_verified", "password",
                    "auto_generate_password", "reason"})
BLANK: dict[str, Any] = {"name": "", "email": "", "mobile": None, "phone": None, "contact_type": "general",
         "public_notes": "", "private_notes": "", "ip_whitelist": [], "email_verified": False,
         "mobile_verified": False}


def contact_values(form: FormData) -> dict[str, Any]:
    """The contact fields of the form as the API spells them."""
    return {
        "name": text(form, "name"), "email": text(form, "email"),
        "mobile": text_or_none(form, "mobile"), "phone": text_or_none(form, "phone"),
        "contact_type": text(form, "contact_type") or "general",
        "public_notes": multiline(form, "public_notes"), "private_notes": multiline(form, "private_notes"),
        "ip_whitelist": split_list(text(form, "ip_whitelist")),
        "email_verified": checked(form, "email_verified"),
        "mobile_verified": checked(form, "mobile_verified"),
    }


def password_choice(form: FormData) -> dict[str, Any]:
    """Generated and e-mailed (the default), or the password typed."""
    if form.get("password_mode") == "manual":
        return {"auto_generate_password": False, "password": str(form.get("password") or "")}
    return {"auto_generate_password": True}


async def _render(page: Page, customer_id: str, template: str, context: dict[str, Any],
                  errors: FormErrors | None = None, status: int = 200) -> Response:
    loaded = await load_card(page, customer_id)
    if not loaded.ok:
        return not_found(page, loaded)
    return page.render(template, {"card": loaded.body, "tab": "main", **await card_header(page, loaded.body),
                                  **context}, errors=errors, status=status)


def _contact(card: dict[str, Any], contact_id: str) -> dict[str, Any] | None:
    return next((c for c in card.get("contacts", []) if c["id"] == contact_id), None)


@router.get("/contacts/new")
async def new_contact(page: PageDep, customer_id: str) -> Response:
    """An empty contact form."""
    return await _render(page, customer_id, "contact_form.html", {"contact": BLANK, "new": True,
                                                                   "mode": "auto"})


@router.post("/contacts/new")
async def add_contact(page: PageDep, customer_id: str) -> Response:
    """POST /v1/customers/{id}/contacts."""
    form = await page.form()
    result = await page.api.post(f"/v1/customers/{customer_id}/contacts",
                                 json={**contact_values(form), **password_choice(form)},
                                 headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=contact")
    return await _render(page, customer_id, "contact_form.html", {
        "contact": contact_values(form), "new": True, "mode": form.get("password_mode") or "auto",
    }, errors_from(result, FIELDS), result.status)


@router.get("/contacts/{contact_id}/edit")
async def edit_contact(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """The contact's form."""
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    if contact is None:
        return page.render("error.html", {"title": "No such contact", "message": loaded.message or
                                          "This customer has no such contact."}, status=404)
    return await _render(page, customer_id, "contact_form.html", {"contact": contact, "new": False})


@router.post("/contacts/{contact_id}/edit")
async def save_contact(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """PATCH the fields that changed."""
    form = await page.form()
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    if contact is None:
        return not_found(page, loaded)
    changes = changed_fields(contact, contact_values(form))
    if not changes:
        return redirect(f"{CONSOLE}/customers/{customer_id}")
    result = await page.api.patch(f"/v1/customers/{customer_id}/contacts/{contact_id}", json=changes,
                                  headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=contact")
    return await _render(page, customer_id, "contact_form.html", {
        "contact": {**contact, **contact_values(form)}, "new": False,
    }, errors_from(result, FIELDS), result.status)


@router.get("/contacts/{contact_id}/remove")
async def confirm_remove(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """Ask before removing a contact."""
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    if contact is None:
        return not_found(page, loaded)
    return await _render(page, customer_id, "contact_remove.html", {"contact": contact})


@router.post("/contacts/{contact_id}/remove")
async def remove(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """DELETE the contact."""
    form = await page.form()
    erase = checked(form, "erase")
    if erase and not text(form, "reason"):  # an erasure needs its reason before anything is done
        return await _render(page, customer_id, "contact_remove.html", {"contact": {"id": contact_id}},
                             _reason_needed(), 422)
    result = await page.api.delete(f"/v1/customers/{customer_id}/contacts/{contact_id}",
                                   headers=page.reason_headers(form))
    if result.ok and erase:  # product.md section 15: the key of its personal data is destroyed
        result = await page.api.post(f"/v1/customers/{customer_id}/contacts/{contact_id}/erase",
                                     json={"reason": text(form, "reason")})
        if result.ok:
            return redirect(f"{CONSOLE}/customers/{customer_id}?notice=contact-erased")
    elif result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=contact-removed")
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    return await _render(page, customer_id, "contact_remove.html", {"contact": contact or {}},
                         errors_from(result, FIELDS), result.status)


@router.get("/contacts/{contact_id}/password")
async def password_form(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """Reset a password: generated and e-mailed, or typed."""
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    if contact is None:
        return not_found(page, loaded)
    return await _render(page, customer_id, "contact_password.html", {"contact": contact, "mode": "auto"})


@router.post("/contacts/{contact_id}/password")
async def reset_password(page: PageDep, customer_id: str, contact_id: str) -> Response:
    """POST .../password."""
    form = await page.form()
    result = await page.api.post(f"/v1/customers/{customer_id}/contacts/{contact_id}/password",
                                 json=password_choice(form), headers=page.reason_headers(form))
    if result.ok:
        return redirect(f"{CONSOLE}/customers/{customer_id}?notice=password")
    loaded = await load_card(page, customer_id)
    contact = _contact(loaded.body, contact_id) if loaded.ok else None
    return await _render(page, customer_id, "contact_password.html", {
        "contact": contact or {}, "mode": form.get("password_mode") or "auto",
    }, errors_from(result, FIELDS), result.status)


def _reason_needed() -> FormErrors:
    errors = FormErrors()
    errors.add("reason", "an erasure needs a reason")
    return errors
