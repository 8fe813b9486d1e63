"""The Alerts page: rules (create, edit, pause, resume, delete) and the latest firings."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from shared.contracts.alerts import AREAS, UNITS
from starlette.datastructures import FormData

from gateway.auth.roles import Permission
from gateway.web.forms import FormErrors, checked, errors_from, split_list, text
from gateway.web.pages import CONSOLE, ConsoleRoute, Page, current_page, forbidden_page, redirect

router = APIRouter(prefix=f"{CONSOLE}/alerts", route_class=ConsoleRoute, include_in_schema=False)
PageDep = Annotated[Page, Depends(current_page)]
FIELDS = ("name", "scope", "scope.customer_id", "scope.tag", "area", "operator", "threshold",
          "reset_threshold", "window_minutes", "min_attempts", "actions", "actions.email_operators",
          "actions.penalty_minutes", "repeat_minutes", "level", "state")
SCOPES = (("all", "All customers"), ("customer_id", "One customer (id)"), ("tag", "Customers with a tag"))
OPERATORS = (("lt", "below (lt)"), ("gt", "above (gt)"))


def rule_from_form(form: FormData) -> dict[str, Any]:
    """The API's rule body from the form; blanks are left out so the API's defaults apply."""
    kind = text(form, "scope_kind") or "all"
    scope: dict[str, Any] = {"all": True} if kind == "all" else {kind: text(form, "scope_value")}
    body: dict[str, Any] = {
        "name": text(form, "name"), "scope": scope, "area": text(form, "area"),
        "operator": text(form, "operator"),
        "threshold": text(form, "threshold"), "level": text(form, "level") or "warning",
        "state": "paused" if checked(form, "paused") else "ready",
        "actions": {"email_contacts": checked(form, "email_contacts"),
                    "sms_contacts": checked(form, "sms_contacts"),
                    "email_operators": split_list(text(form, "email_operators")),
                    "set_inactive": checked(form, "set_inactive")},
    }
    for name in ("reset_threshold", "window_minutes", "min_attempts", "repeat_minutes"):
        if value := text(form, name):
            body[name] = value
    if penalty := text(form, "penalty_minutes"):
        body["actions"]["penalty_minutes"] = penalty
    return body


def form_values(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule (API shape) as the form's values."""
    scope = rule.get("scope") or {}
    kind = next((k for k in ("customer_id", "tag") if scope.get(k)), "all")
    actions = rule.get("actions") or {}
    return {**rule, "scope_kind": kind, "scope_value": scope.get(kind) or "",
            "email_operators": ", ".join(actions.get("email_operators") or []),
            "penalty_minutes": actions.get("penalty_minutes") or "", "paused": rule.get("state") == "paused",
            **{k: actions.get(k, False) for k in ("email_contacts", "sms_contacts", "set_inactive")}}


def _errors(errors: FormErrors) -> FormErrors:
    """Errors of nested fields beside the form's own inputs."""
    for api_name, form_name in (("scope.customer_id", "scope_value"), ("scope.tag", "scope_value"),
                                ("scope", "scope_value"), ("actions.email_operators", "email_operators"),
                                ("actions.penalty_minutes", "penalty_minutes")):
        if api_name in errors.fields:
            errors.fields.setdefault(form_name, []).extend(errors.fields.pop(api_name))
    return errors


async def _render(page: Page, *, errors: FormErrors | None = None, values: dict[str, Any] | None = None,
                  editing: dict[str, Any] | None = None, status: int = 200) -> Response:
    if not page.can(Permission.ALERTS):
        return forbidden_page(page.request, "Alerts are for operators and admins.")
    customer = page.request.query_params.get("customer_id") or ""
    query: dict[str, Any] = {"limit": 50} | ({"customer_id": customer} if customer else {})
    rules, firings = await asyncio.gather(page.api.get("/v1/alerts"), page.api.get("/v1/alerts/firings",
                                                                                    params=query))
    return page.render("alerts.html", {
        "nav": "alerts", "rules": rules.body["items"] if rules.ok else [],
        "unavailable": None if rules.ok else rules.message,
        "firings": firings.body["items"] if firings.ok else [], "customer_filter": customer,
        "values": values or {"area": "asr", "operator": "lt", "window_minutes": 10, "level": "warning",
                             "scope_kind": "all"},
        "editing": editing, "areas": [(a, f"{a} ({UNITS[a]})") for a in AREAS], "scopes": SCOPES,
        "operators": OPERATORS, "notice": page.request.query_params.get("notice"),
    }, errors=errors, status=status)


@router.get("")
async def alerts_page(page: PageDep) -> Response:
    """Rules, a form for a new one, and the latest firings (of one customer with ?customer_id=)."""
    return await _render(page)


@router.post("")
async def create_rule(page: PageDep) -> Response:
    """POST /v1/alerts."""
    form = await page.form()
    body = rule_from_form(form)
    result = await page.api.post("/v1/alerts", json=body)
    if result.ok:
        return redirect(f"{CONSOLE}/alerts?notice=created")
    return await _render(page, errors=_errors(errors_from(result, FIELDS)), values=form_values(body),
                         status=result.status)


@router.get("/{alert_id}")
async def edit_rule(page: PageDep, alert_id: str) -> Response:
    """The rule in the form, to change it."""
    result = await page.api.get(f"/v1/alerts/{alert_id}")
    if not result.ok:
        return await _render(page, errors=errors_from(result), status=result.status)
    return await _render(page, values=form_values(result.body), editing=result.body)


@router.post("/{alert_id}")
async def save_rule(page: PageDep, alert_id: str) -> Response:
    """PUT /v1/alerts/{id} with the version the form was opened at."""
    form = await page.form()
    body = rule_from_form(form)
    headers = {"If-Match": f'"{text(form, "version")}"'} if text(form, "version") else {}
    result = await page.api.put(f"/v1/alerts/{alert_id}", json=body, headers=headers)
    if result.ok:
        return redirect(f"{CONSOLE}/alerts?notice=saved")
    editing = {"id": alert_id, "version": text(form, "version"), "name": body["name"]}
    return await _render(page, errors=_errors(errors_from(result, FIELDS)), values=form_values(body),
                         editing=editing, status=result.status)


@router.post("/{alert_id}/{action}")
async def rule_action(page: PageDep, alert_id: str, action: str) -> Response:
    """Pause, resume or delete."""
    await page.form()
    if action == "delete":
        result = await page.api.delete(f"/v1/alerts/{alert_id}")
    elif action in ("pause", "resume"):
        result = await page.api.post(f"/v1/alerts/{alert_id}/{action}")
    else:
        return await _render(page, status=404)
    if result.ok:
        return redirect(f"{CONSOLE}/alerts?notice={action}")
    return await _render(page, errors=errors_from(result), status=result.status)
