"""Ledger events of the customer aggregate (payments) and the PayPal settings, on CUSTOMER_EVENTS.

A payment, refund or adjustment is a fact about one customer: `events.customer.<id>.PaymentRecorded`.
Money is decimal text; the payer's PayPal e-mail is personal data.
"""

from __future__ import annotations

from shared.contracts.events.base import Event, register
from shared.contracts.events.customer import Change, OptionalPersonalText


@register("PaymentRecorded")
class PaymentRecorded(Event):
    """A payment, refund or adjustment on the customer's ledger (completed ones count)."""

    payment_id: str
    kind: str  # payment, refund, adjustment
    amount: str
    currency: str
    method: str
    reference: str
    status: str  # completed, pending, cancelled
    fee: str | None = None
    description: str | None = None
    private_note: str | None = None
    source: str = "http"  # http, nats, paypal
    below_minimum: bool = False
    payer_email: OptionalPersonalText = None
    received_at: str
    notify_contacts: bool = False


@register("PaymentStatusChanged")
class PaymentStatusChanged(Event):
    """A pending payment became completed or cancelled."""

    payment_id: str
    reference: str
    old: str
    new: str


@register("PaypalSettingsChanged")
class PaypalSettingsChanged(Event):
    """The PayPal settings (enabled, receiver_email, verify_url) changed."""

    changes: dict[str, Change]
