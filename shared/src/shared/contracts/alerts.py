"""The alerts service's NATS API: rules (commands, queries) and their firings (product.md section 12)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import CommandMeta
from shared.contracts.fields import Name, Tag

Area = Literal["balance", "available_credit", "asr", "acd", "pdd", "daily_spend", "attempts_per_minute",
               "invoice_overdue"]
AREAS: tuple[str, ...] = ("balance", "available_credit", "asr", "acd", "pdd", "daily_spend",
                          "attempts_per_minute", "invoice_overdue")
CALL_AREAS = frozenset({"asr", "acd", "pdd", "attempts_per_minute"})  # measured over a window
MONEY_AREAS = frozenset({"balance", "available_credit", "daily_spend"})
# what each area's value is, for people (the console, docs, the e-mail)
UNITS = {"balance": "money", "available_credit": "money", "asr": "%", "acd": "s", "pdd": "ms",
         "daily_spend": "money", "attempts_per_minute": "calls/min", "invoice_overdue": "money"}
Threshold = Annotated[Decimal, Field(max_digits=18, decimal_places=4, allow_inf_nan=False)]


class AlertSubjects:
    """Request/reply subjects of the alerts service."""

    CREATE = "alerts.cmd.create"
    UPDATE = "alerts.cmd.update"
    DELETE = "alerts.cmd.delete"
    PAUSE = "alerts.cmd.pause"
    RESUME = "alerts.cmd.resume"
    GET = "alerts.query.get"
    LIST = "alerts.query.list"
    FIRINGS = "alerts.query.firings"


class Scope(Strict):
    """Whom a rule watches: every customer, one customer, or the customers with a tag."""

    all: bool | None = None
    customer_id: UUID | None = None
    tag: Tag | None = None

    def kind(self) -> str | None:
        """`all`, `customer_id`, `tag`, or None when the scope names nobody."""
        named = [k for k, v in (("all", self.all), ("customer_id", self.customer_id), ("tag", self.tag)) if v]
        return named[0] if len(named) == 1 else None

    @model_validator(mode="after")
    def _one(self) -> Scope:
        named = [v for v in (self.all, self.customer_id, self.tag) if v]
        if len(named) > 1:
            raise ValueError("scope takes one of all, customer_id or tag")
        return self


class AlertActions(Strict):
    """What a firing does."""

    email_contacts: bool = False
    sms_contacts: bool = False
    email_operators: list[EmailStr] = Field(default_factory=list, max_length=20)
    penalty_minutes: int | None = Field(default=None, ge=1, le=525_600)
    set_inactive: bool = False

    @model_validator(mode="after")
    def _one_status(self) -> AlertActions:
        if self.penalty_minutes is not None and self.set_inactive:
            raise ValueError("choose penalty_minutes or set_inactive, not both")
        return self

    def changes_status(self) -> bool:
        """Whether the firing changes the customer's status."""
        return self.penalty_minutes is not None or self.set_inactive


def _check_bounds(area: str, name: str, value: Decimal | None) -> None:
    if value is None:
        return
    if area == "asr" and not Decimal(0) <= value <= Decimal(100):
        raise ValueError(f"{name} of an asr rule is a percentage: 0 to 100, not {value}")
    if area in ("acd", "pdd", "attempts_per_minute", "daily_spend", "invoice_overdue") and value < 0:
        raise ValueError(f"{name} of a {area} rule cannot be negative")


class AlertRuleIn(Strict):
    """A rule as an operator writes it (create, and the whole rule on update)."""

    name: Name
    scope: Scope
    area: Area
    operator: Literal["lt", "gt"]
    threshold: Threshold
    # the value must come back past this to re-arm (default: the threshold itself)
    reset_threshold: Threshold | None = None
    window_minutes: int = Field(default=10, ge=1, le=1440)
    min_attempts: int = Field(default=0, ge=0, le=1_000_000)
    actions: AlertActions = Field(default_factory=AlertActions)
    repeat_minutes: int | None = Field(default=None, ge=1, le=525_600)
    level: Literal["warning", "error"] = "warning"
    state: Literal["ready", "paused"] = "ready"

    @model_validator(mode="after")
    def _coherent(self) -> AlertRuleIn:
        if self.scope.kind() is None:
            what = "a penalty or status change" if self.actions.changes_status() else "a rule"
            raise ValueError(f"{what} needs a scope: {{all: true}}, {{customer_id}} or {{tag}}")
        _check_bounds(self.area, "threshold", self.threshold)
        _check_bounds(self.area, "reset_threshold", self.reset_threshold)
        reset = self.reset_threshold
        if reset is not None and self.operator == "lt" and reset < self.threshold:
            raise ValueError("reset_threshold of an lt rule must be at or above the threshold")
        if reset is not None and self.operator == "gt" and reset > self.threshold:
            raise ValueError("reset_threshold of a gt rule must be at or below the threshold")
        return self

    @property
    def reset(self) -> Decimal:
        """Where the rule re-arms."""
        return self.threshold if self.reset_threshold is None else self.reset_threshold


class AlertRule(AlertRuleIn):
    """A stored rule."""

    model_config = {"extra": "ignore"}

    id: UUID
    version: int
    created_at: datetime
    updated_at: datetime


class AlertPage(BaseModel):
    """Every rule (there are few), by name."""

    items: list[AlertRule]


class CreateAlert(Strict):
    """Create a rule; its name is unique (`name_taken`)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    rule: AlertRuleIn


class UpdateAlert(Strict):
    """Replace a rule; `expected_version` makes a concurrent change a `version_mismatch`."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    alert_id: UUID
    expected_version: int | None = None
    rule: AlertRuleIn


class AlertRef(Strict):
    """One rule: delete, pause, resume, get."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    alert_id: UUID


class ListAlerts(Strict):
    """Every rule; optionally those that watch one customer (its own, by tag, or all)."""

    customer_id: UUID | None = None


class ListFirings(Strict):
    """Firings, newest first."""

    customer_id: UUID | None = None
    alert_id: UUID | None = None
    since: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class Firing(BaseModel):
    """One firing of a rule for a customer."""

    id: UUID
    alert_id: UUID
    alert_name: str
    customer_id: UUID
    area: str
    operator: str
    value: Decimal
    threshold: Decimal
    level: str
    actions: list[str]  # what was done: email_contacts, sms_contacts, email_operators, penalty, set_inactive
    reason: str
    fired_at: datetime
    # the moment of the call record, payment or invoice that crossed
    event_at: datetime


class FiringPage(BaseModel):
    """Firings, newest first."""

    items: list[Firing]


class Deleted(BaseModel):
    """A rule was deleted."""

    id: UUID
    deleted: bool = True
