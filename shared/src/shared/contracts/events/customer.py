"""Events of the customer service's aggregates (customer, settings), as written to CUSTOMER_EVENTS.

Field types are the JSON-mode values the events carry: timestamps are ISO text, money is
decimal text. Personal data carries `Personal` (or `PersonalKeys` on a change map).
"""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import TypedDict

from shared.contracts.events.base import PERSONAL, Event, PersonalKeys, register

CUSTOMER_CATEGORY = "customer"
SETTINGS_CATEGORY = "settings"
SETTINGS_STREAM = "global"

PersonalText = Annotated[str, PERSONAL]
OptionalPersonalText = Annotated[str | None, PERSONAL]


class Change(TypedDict):
    """One changed field: its old and its new value."""

    old: Any
    new: Any


class AddressData(TypedDict):
    """A card's postal address; its street lines are personal."""

    line1: OptionalPersonalText
    line2: OptionalPersonalText
    city: str | None
    region: str | None
    postcode: str | None
    country: str | None


class ContactData(TypedDict):
    """One item of a card's `contacts` list (the keys of shared.contracts.contacts.CONTACT_KEYS)."""

    id: str
    name: PersonalText
    email: PersonalText
    mobile: OptionalPersonalText
    phone: OptionalPersonalText
    contact_type: str
    public_notes: PersonalText
    private_notes: PersonalText
    ip_whitelist: Annotated[list[str], PERSONAL]
    email_verified: bool
    mobile_verified: bool


CARD_PERSONAL = ("paypal_email", "address.line1", "address.line2")
CONTACT_PERSONAL = ("name", "email", "mobile", "phone", "public_notes", "private_notes", "ip_whitelist")


@register("CustomerCreated")
class CustomerCreated(Event):
    """A new card, with every field an operator sets."""

    name: str
    paypal_email: OptionalPersonalText
    website: str | None
    status: str
    penalty_until: str | None
    debit_limit: str
    minimum_payment: str
    daily_spend_limit: str = "0"  # added with the ledger; older events hold none (no spend limit)
    invoice_schedule: str = "none"  # added with scheduled invoices; older events hold none
    tax: str
    currency: str
    portal_access: bool
    channels: int
    cps: str
    address: AddressData
    tags: list[str]
    config_toml: str
    verification: dict[str, bool]
    notes: str


@register("CustomerUpdated")
class CustomerUpdated(Event):
    """Changed card fields, each with old and new value (status has its own event)."""

    changes: Annotated[dict[str, Change], PersonalKeys(*CARD_PERSONAL)]


@register("CustomerStatusChanged")
class CustomerStatusChanged(Event):
    """A status transition; `until` is the penalty's end (penalty only)."""

    old: str
    new: str
    until: str | None
    old_until: str | None


@register("CustomerDeleted")
class CustomerDeleted(Event):
    """The card is deleted; its name becomes free."""

    name: str


@register("AuditSettingsChanged")
class AuditSettingsChanged(Event):
    """The audit setting (reason required) changed."""

    changes: dict[str, Change]


@register("NumberRangeSet")
class NumberRangeSet(Event):
    """The internal number range: start, block size, optional end, and the range before."""

    start: int
    block_size: int
    end: int | None
    old: dict[str, int | None] | None


@register("NumberBlockAssigned")
class NumberBlockAssigned(Event):
    """A block of internal numbers is the customer's."""

    id: str
    index: int
    start: int
    end: int


@register("NumberBlockReleased")
class NumberBlockReleased(Event):
    """A block of internal numbers is free again."""

    id: str
    start: int
    end: int


@register("ContactAdded")
class ContactAdded(Event):
    """A new contact; `password` says how it was set (`generated`, `operator`), never what."""

    contact: ContactData
    password: str


@register("ContactUpdated")
class ContactUpdated(Event):
    """Changed contact fields, each with old and new value."""

    contact_id: str
    changes: Annotated[dict[str, Change], PersonalKeys(*CONTACT_PERSONAL)]


@register("ContactRemoved")
class ContactRemoved(Event):
    """The contact is gone; its e-mail becomes free."""

    contact_id: str
    name: PersonalText
    email: PersonalText


@register("ContactPasswordSet")
class ContactPasswordSet(Event):
    """A new password, and how it was set."""

    contact_id: str
    method: str


@register("ContactEmailVerified")
class ContactEmailVerified(Event):
    """The contact proved this e-mail address."""

    contact_id: str
    email: PersonalText
    verification_id: str


@register("ContactMobileVerified")
class ContactMobileVerified(Event):
    """The contact proved this mobile number."""

    contact_id: str
    mobile: PersonalText
    verification_id: str


@register("CliApproved")
class CliApproved(Event):
    """A caller id is approved (by a verified test call or by an operator)."""

    number: str
    method: str
    contact_id: str | None


@register("CliRemoved")
class CliRemoved(Event):
    """A caller id is no longer approved."""

    number: str


@register("CustomerErased")
class CustomerErased(Event):
    """A deleted customer's personal data is erased: the keys of `subjects` are destroyed.

    Who, when and why are the envelope's metadata; the event itself holds no personal data.
    """

    subjects: list[str]


@register("ContactErased")
class ContactErased(Event):
    """A removed contact's personal data is erased: the keys of `subjects` are destroyed."""

    contact_id: str
    subjects: list[str]


ERASURE_EVENTS = (CustomerErased, ContactErased)


CustomerEvent = (
    CustomerCreated | CustomerUpdated | CustomerStatusChanged | CustomerDeleted
    | NumberBlockAssigned | NumberBlockReleased | ContactAdded | ContactUpdated | ContactRemoved
    | ContactPasswordSet | ContactEmailVerified | ContactMobileVerified | CliApproved | CliRemoved
    | CustomerErased | ContactErased
)
SettingsEvent = AuditSettingsChanged | NumberRangeSet
CONTACT_EVENTS = (
    ContactAdded, ContactUpdated, ContactRemoved, ContactPasswordSet, ContactEmailVerified,
    ContactMobileVerified, CliApproved, CliRemoved,
)
