"""Settings: audit reason, operator tokens, e-mail and SMS (secrets write-only, tests), number range."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from starlette.datastructures import FormData

from gateway.web.api_client import ApiResult
from gateway.web.forms import FormErrors, checked, errors_from, text, text_or_none
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, redirect

router = APIRouter(prefix=f"{CONSOLE}/settings", route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
EMAIL_FIELDS = ("from_address", "from_name", "smtp_host", "smtp_port", "smtp_username", "smtp_password",
                "security", "to")
SMS_FIELDS = ("account_sid", "auth_token", "from_number", "api_base_url", "to")
RANGE_FIELDS = ("start", "block_size", "end")
TOKEN_FIELDS = ("name", "role")
ROLES = ("viewer", "operator", "billing", "admin")


def _body(result: ApiResult) -> dict[str, Any] | None:
    return result.body if result.ok and isinstance(result.body, dict) else None


async def _render(page: Page, *, errors: FormErrors | None = None, failed: str | None = None,
                  status: int = 200, **extra: Any) -> Response:
    """The settings page: every section, each with its own form errors."""
    api = page.api
    has_range = await api.has_route("GET", "/v1/settings/number-range")
    calls = [api.get("/v1/settings/audit")]
    if page.is_admin:
        calls += [api.get("/v1/settings/email"), api.get("/v1/settings/sms"),
                  api.get("/v1/tokens", params={"limit": 200})]
    if has_range:
        calls.append(api.get("/v1/settings/number-range"))
    results = await asyncio.gather(*calls)
    audit = _body(results[0])
    email = sms = tokens = number_range = None
    if page.is_admin:
        email, sms, tokens = _body(results[1]), _body(results[2]), _body(results[3])
    if has_range:
        number_range = _body(results[-1])
    context = {
        "nav": "settings", "audit": audit, "email": email, "sms": sms, "tokens": tokens,
        "number_range": number_range, "has_range": has_range, "roles": ROLES,
        "failed": failed, "form_values": {}, **extra,
    }
    return page.render("settings.html", context, errors=errors, status=status)


@router.get("")
async def settings(page: PageDep) -> Response:
    """Every settings section the role may see."""
    return await _render(page, notice=page.request.query_params.get("notice"))


async def _after(page: Page, result: ApiResult, section: str, known: tuple[str, ...], notice: str,
                 values: dict[str, Any] | None = None, **extra: Any) -> Response:
    """Back to the settings on success; otherwise the section's form again with the API's errors."""
    if result.ok:
        return redirect(f"{CONSOLE}/settings?notice={notice}#{section}")
    errors = errors_from(result, known)
    if "to" in errors.fields:  # each test form has its own recipient field
        errors.fields[f"{section}_to"] = errors.fields.pop("to")
    return await _render(page, errors=errors, failed=section, status=result.status,
                         form_values=values or {}, **extra)


@router.post("/audit")
async def save_audit(page: PageDep) -> Response:
    """PUT /v1/settings/audit."""
    form = await page.form()
    body = {"require_reason": checked(form, "require_reason")}
    result = await page.api.put("/v1/settings/audit", json=body, headers=page.reason_headers(form))
    return await _after(page, result, "audit", ("require_reason", "reason"), "audit")


@router.post("/tokens")
async def create_token(page: PageDep) -> Response:
    """POST /v1/tokens: the new secret is shown once, on this answer only."""
    form = await page.form()
    values = {"name": text(form, "name"), "role": text(form, "role")}
    result = await page.api.post("/v1/tokens", json=values)
    if result.ok:
        return await _render(page, created_token=result.body, notice="token")
    return await _after(page, result, "tokens", TOKEN_FIELDS, "token", values)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(page: PageDep, token_id: str) -> Response:
    """DELETE /v1/tokens/{id}."""
    await page.form()
    result = await page.api.delete(f"/v1/tokens/{token_id}")
    return await _after(page, result, "tokens", TOKEN_FIELDS, "revoked")


def email_values(form: FormData) -> dict[str, Any]:
    """PUT /v1/settings/email; a blank password keeps the stored one, 'clear' empties it."""
    values: dict[str, Any] = {
        "from_address": text(form, "from_address"), "from_name": text(form, "from_name"),
        "smtp_host": text(form, "smtp_host"), "smtp_port": text(form, "smtp_port") or "587",
        "smtp_username": text_or_none(form, "smtp_username"),
        "security": text(form, "security") or "starttls",
    }
    password = form.get("smtp_password")
    if isinstance(password, str) and password:
        values["smtp_password"] = password
    elif checked(form, "clear_password"):
        values["smtp_password"] = ""
    return values


@router.post("/email")
async def save_email(page: PageDep) -> Response:
    """Save the e-mail settings (the password is write-only)."""
    form = await page.form()
    values = email_values(form)
    result = await page.api.put("/v1/settings/email", json=values)
    return await _after(page, result, "email", EMAIL_FIELDS, "email", values)


@router.post("/email/test")
async def test_email(page: PageDep) -> Response:
    """Send a test e-mail with the stored settings; show what the server said."""
    form = await page.form()
    result = await page.api.post("/v1/settings/email/test", json={"to": text(form, "email_to")})
    if result.ok:
        return await _render(page, email_test=result.body, test_to=text(form, "email_to"))
    return await _after(page, result, "email", EMAIL_FIELDS, "email")


@router.post("/sms")
async def save_sms(page: PageDep) -> Response:
    """Save the SMS settings (the auth token is write-only)."""
    form = await page.form()
    values: dict[str, Any] = {
        "account_sid": text(form, "account_sid"), "from_number": text(form, "from_number"),
        "api_base_url": text(form, "api_base_url") or "https://api.twilio.com",
    }
    token = form.get("auth_token")
    if isinstance(token, str) and token:
        values["auth_token"] = token
    result = await page.api.put("/v1/settings/sms", json=values)
    return await _after(page, result, "sms", SMS_FIELDS, "sms", values)


@router.post("/sms/test")
async def test_sms(page: PageDep) -> Response:
    """Send a test SMS with the stored settings."""
    form = await page.form()
    result = await page.api.post("/v1/settings/sms/test", json={"to": text(form, "sms_to")})
    if result.ok:
        return await _render(page, sms_test=result.body, test_to=text(form, "sms_to"))
    return await _after(page, result, "sms", SMS_FIELDS, "sms")


@router.post("/number-range")
async def save_range(page: PageDep) -> Response:
    """PUT /v1/settings/number-range."""
    form = await page.form()
    values: dict[str, Any] = {"start": text(form, "start"), "block_size": text(form, "block_size")}
    if text(form, "end"):
        values["end"] = text(form, "end")
    result = await page.api.put("/v1/settings/number-range", json=values)
    return await _after(page, result, "number-range", RANGE_FIELDS, "range", values)
