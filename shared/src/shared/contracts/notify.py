"""The NOTIFY work queue: system messages for the notifier (new passwords, codes, links)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

Template = Literal[
    "contact_password",   # a new contact's generated password
    "password_reset",     # a generated password after a reset
    "email_code",         # e-mail verification: code and link
    "mobile_code",        # mobile verification: code by SMS
    "payment_receipt",    # a payment recorded with notify_contacts, to the billing contacts
    "alert_customer",     # an alert rule fired: to the customer's contacts (e-mail, SMS)
    "alert_operator",     # an alert rule fired: to the operators' addresses the rule names
]


class SystemMessage(BaseModel):
    """One message to one recipient; `notification_id` makes its delivery happen once."""

    notification_id: str = Field(max_length=200)
    channel: Literal["email", "sms"]
    template: Template
    to: str = Field(max_length=320)
    customer_id: UUID | None = None
    contact_id: UUID | None = None
    # non-secret template values (contact name, customer name, link base ...)
    variables: dict[str, str] = Field(default_factory=dict)
    # the password or code, sealed with shared.secrets.Sealer: only the notifier opens it
    sealed_secret: str | None = None

    @property
    def subject(self) -> str:
        """Where it is published: `notify.<channel>.<template>.<customer_id>` (`none` without one).

        The customer token is what the NOTIFY stream partitions on (shared.partitions).
        """
        return f"notify.{self.channel}.{self.template}.{self.customer_id or 'none'}"
