"""The verification service's NATS API: codes for e-mail and mobile, test calls for CLIs.

Outcomes are events on VERIFICATION_EVENTS, subject `events.verification.<customer_id>.<Type>`,
`Nats-Msg-Id` = the event id; their data never holds a code. The customer service turns
`EmailVerified`, `MobileVerified` and `CliVerified` into events of the customer aggregate.
Requests are idempotent by `meta.command_id` (its other fields are not used): a request retried
after a lost reply gets the first answer again, with no second code and no second outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.contracts.base import Strict
from shared.contracts.contacts import E164
from shared.contracts.customer import CommandMeta
from shared.contracts.events.verification import (
    CliVerified,
    EmailVerified,
    MobileVerified,
    VerificationCodeRejected,
    VerificationCodeSent,
)

Channel = Literal["email", "mobile"]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]

# the event types are the typed models of shared.contracts.events.verification
EMAIL_VERIFIED = EmailVerified.TYPE
MOBILE_VERIFIED = MobileVerified.TYPE
CLI_VERIFIED = CliVerified.TYPE
CODE_SENT = VerificationCodeSent.TYPE
CODE_REJECTED = VerificationCodeRejected.TYPE
# outcome event type -> what it verifies
VERIFIED_KINDS: dict[str, Literal["email", "mobile", "cli"]] = {
    EMAIL_VERIFIED: "email", MOBILE_VERIFIED: "mobile", CLI_VERIFIED: "cli",
}


class VerificationStreams:
    """Where outcomes go, and where the switch is asked for test calls."""

    STREAM = "VERIFICATION_EVENTS"
    CATEGORY = "verification"
    TEST_CALL = "switch.testcall.request"
    # the demo's simulated switch answers what it spoke lately (docs/verification.md "Demo")
    DEMO_SPOKEN = "switch.demo.spoken"


class VerificationSubjects:
    """Request/reply subjects of the verification service."""

    REQUEST_CODE = "verification.cmd.request-code"
    CONFIRM_CODE = "verification.cmd.confirm-code"
    CONFIRM_LINK = "verification.cmd.confirm-link"
    START_CLI = "verification.cmd.start-cli"
    CONFIRM_CLI = "verification.cmd.confirm-cli"


class PortalCaller(Strict):
    """The portal session a request comes from (checked again with the customer service)."""

    customer_id: UUID
    contact_id: UUID
    ip: str | None = Field(default=None, max_length=64)
    issued_at: datetime | None = None


class RequestCode(Strict):
    """Send a new code to the contact's e-mail (with a confirming link) or mobile."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    caller: PortalCaller
    channel: Channel


class ConfirmCode(Strict):
    """The code the contact typed."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    caller: PortalCaller
    channel: Channel
    code: Code


class ConfirmLink(Strict):
    """The e-mail link was followed: the verification's id and its code."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    verification_id: UUID
    code: Code


class StartCliCheck(Strict):
    """Ask the switch for a test call to this number that speaks a code."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    caller: PortalCaller
    number: E164


class ConfirmCli(Strict):
    """The code the test call spoke."""

    meta: CommandMeta = Field(default_factory=CommandMeta)
    caller: PortalCaller
    number: E164
    code: Code


class CodeSent(BaseModel):
    """A code is on its way."""

    verification_id: UUID
    channel: Literal["email", "mobile", "cli"]
    target: str
    expires_at: datetime
    attempts_left: int


class Verified(BaseModel):
    """The code was right: the outcome is on its way to the customer aggregate."""

    verification_id: UUID
    channel: Literal["email", "mobile", "cli"]
    target: str
    verified: bool = True


class TestCallRequest(BaseModel):
    """What the switch receives on `switch.testcall.request` (it speaks `code` to `number`)."""

    customer_id: UUID
    number: str
    code: str


class SpokenTestCall(BaseModel):
    """A test call the demo's simulated switch made: the number, the code it spoke, when."""

    customer_id: UUID
    number: str
    spoken_code: str
    at: datetime


class SpokenTestCalls(BaseModel):
    """The demo switch's latest test calls, newest first (a real switch never answers this)."""

    items: list[SpokenTestCall]
