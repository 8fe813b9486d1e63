"""The notifier's NATS API: subjects, requests and replies (the gateway speaks them as JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field, StringConstraints, model_validator

from shared.contracts.base import Strict
from shared.contracts.customer import BoardFilter, CommandMeta
from shared.errors import FieldError

Channel = Literal["email", "sms"]
Security = Literal["none", "starttls", "tls"]
E164 = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9]\d{6,14}$")]
DEFAULT_TWILIO_BASE_URL = "https://api.twilio.com"
MAX_SELECTED_IDS = 10_000


class NotifierSubjects:
    """Request/reply subjects of the notifier."""

    SEND = "notifier.cmd.send"
    GET_MESSAGE = "notifier.query.message"
    LIST_MESSAGES = "notifier.query.messages"
    GET_EMAIL_SETTINGS = "notifier.query.settings.email"
    SET_EMAIL_SETTINGS = "notifier.cmd.settings.email"
    TEST_EMAIL = "notifier.cmd.settings.email.test"
    GET_SMS_SETTINGS = "notifier.query.settings.sms"
    SET_SMS_SETTINGS = "notifier.cmd.settings.sms"
    TEST_SMS = "notifier.cmd.settings.sms.test"

    @classmethod
    def settings(cls, channel: str) -> tuple[str, str, str]:
        """A channel's (read, write, test) settings subjects."""
        by_channel = {
            "email": (cls.GET_EMAIL_SETTINGS, cls.SET_EMAIL_SETTINGS, cls.TEST_EMAIL),
            "sms": (cls.GET_SMS_SETTINGS, cls.SET_SMS_SETTINGS, cls.TEST_SMS),
        }
        return by_channel[channel]


class MessageSend(Strict):
    """An e-mail (`subject`, `body`) or SMS (`body`) to the contacts of customers chosen by ids or filter.

    Placeholders: `{{customer.name}}`, `{{customer.id}}`, `{{contact.name}}`, `{{contact.email}}`,
    `{{contact.mobile}}`, `{{contact.phone}}`, `{{contact.contact_type}}`, `{{contact.id}}`.
    """

    channel: Channel
    subject: str | None = Field(default=None, max_length=998)
    body: str = Field(min_length=1, max_length=100_000)
    customer_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=MAX_SELECTED_IDS)
    filter: BoardFilter | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> MessageSend:
        if (self.customer_ids is None) == (self.filter is None):
            raise ValueError("select customers by `customer_ids` or by `filter` (exactly one)")
        if self.channel == "email" and not (self.subject or "").strip():
            raise FieldError("subject", "an e-mail needs a subject")
        if self.channel == "sms" and self.subject is not None:
            raise FieldError("subject", "an SMS has no subject")
        if self.channel == "sms" and len(self.body) > 1600:
            raise FieldError("body", "an SMS body is at most 1600 characters")
        return self


class SendMessage(MessageSend):
    """Send a message (as `MessageSend`) on behalf of `meta`'s actor."""

    meta: CommandMeta = Field(default_factory=CommandMeta)


class Skipped(BaseModel):
    """A selected customer that got nothing, and why."""

    customer_id: UUID
    reason: str


class SendReply(BaseModel):
    """What a send answers."""

    message_id: UUID
    recipients: int
    skipped: list[Skipped]


class GetMessage(Strict):
    """A message and its recipients' delivery states (cursor-paged)."""

    message_id: UUID
    limit: int = Field(default=1000, ge=1, le=5000)
    cursor: str | None = Field(default=None, max_length=100)


DeliveryStatus = Literal["queued", "sending", "retrying", "sent", "failed"]


class RecipientStatus(BaseModel):
    """One recipient's delivery."""

    delivery_id: UUID
    customer_id: UUID | None
    contact_id: UUID | None
    to: str
    state: DeliveryStatus
    attempts: int
    last_error: str | None
    dead_lettered: bool
    unconfirmed: bool
    sent_at: datetime | None
    updated_at: datetime


class MessageStatus(BaseModel):
    """A message with its counts by state and one page of recipients."""

    message_id: UUID
    kind: Literal["broadcast", "system"]
    channel: Channel
    subject: str | None
    template: str | None
    created_at: datetime
    recipients: int
    skipped: list[Skipped]
    counts: dict[str, int]
    items: list[RecipientStatus]
    next_cursor: str | None
    total: int


class ListMessages(Strict):
    """Sent messages, newest first: of one customer, one channel, with a recipient in one state."""

    customer_id: UUID | None = None
    channel: Channel | None = None
    state: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=100)


class MessageSummary(BaseModel):
    """One sent message in a list: what, when, and how many recipients are in each state."""

    message_id: UUID
    kind: Literal["broadcast", "system"]
    channel: Channel
    subject: str | None
    template: str | None
    created_at: datetime
    recipients: int
    skipped: int
    counts: dict[str, int]


class MessagePage(BaseModel):
    """`{items, next_cursor, total}` like every list."""

    items: list[MessageSummary]
    next_cursor: str | None
    total: int


class EmailSettingsWrite(Strict):
    """`PUT /v1/settings/email`: omit `smtp_password` to keep the stored one, `""` to clear it.

    A new host, port or security needs the password again (422 otherwise).
    """

    from_address: EmailStr
    from_name: str = Field(default="", max_length=200)
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = Field(default=None, max_length=320)
    smtp_password: str | None = Field(default=None, max_length=1000, json_schema_extra={"writeOnly": True})
    security: Security = "starttls"


class EmailSettingsIn(EmailSettingsWrite):
    """E-mail settings as written, by whom, and the version they replace (if given)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    expected_version: int | None = None


class EmailSettings(BaseModel):
    """E-mail settings as read: the password is never shown, only whether one is set."""

    from_address: str | None = None
    from_name: str = ""
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: None = None
    smtp_password_set: bool = False
    security: Security = "starttls"
    version: int = 0
    updated_at: datetime | None = None


class SmsSettingsWrite(Strict):
    """`PUT /v1/settings/sms`: omit `auth_token` to keep the stored one.

    A new `api_base_url` needs the token again (422 otherwise); it must be https.
    """

    account_sid: str = Field(min_length=1, max_length=64)
    auth_token: str | None = Field(default=None, max_length=1000, json_schema_extra={"writeOnly": True})
    from_number: E164
    api_base_url: str = Field(default=DEFAULT_TWILIO_BASE_URL, pattern=r"^https?://[^\s/]+(:\d+)?(/\S*)?$")


class SmsSettingsIn(SmsSettingsWrite):
    """SMS settings as written, by whom, and the version they replace (if given)."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    expected_version: int | None = None


class SmsSettings(BaseModel):
    """SMS settings as read: the auth token is never shown."""

    account_sid: str | None = None
    auth_token: None = None
    auth_token_set: bool = False
    from_number: str | None = None
    api_base_url: str = DEFAULT_TWILIO_BASE_URL
    version: int = 0
    updated_at: datetime | None = None


class GetSettings(Strict):
    """Read one channel's settings."""


class TestMessage(Strict):
    """Where to send a test message (an e-mail address or an E.164 number)."""

    to: str


class TestEmail(Strict):
    """Send one test e-mail now, with the stored settings."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    to: EmailStr


class TestSms(Strict):
    """Send one test SMS now, with the stored settings."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    to: E164


class TestResult(BaseModel):
    """The outcome of a test message: delivered, or why not (a top-level `error` key means an error reply)."""

    delivered: bool
    provider_id: str | None = None
    reason: str | None = None
    permanent: bool = False


def settings_payload(model: BaseModel) -> dict[str, Any]:
    """The non-secret, non-meta fields of a settings write."""
    return model.model_dump(mode="json", exclude={"meta", "expected_version", "smtp_password", "auth_token"})
