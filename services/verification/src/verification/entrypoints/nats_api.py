"""The verification service's request/reply subjects: one route table, served and documented."""

from __future__ import annotations

from typing import Any

from shared.contracts.verification import (
    CodeSent,
    ConfirmCli,
    ConfirmCode,
    ConfirmLink,
    RequestCode,
    StartCliCheck,
    VerificationSubjects,
    Verified,
)
from shared.rpc import Route

from verification.application.service import VerificationService

QUEUE = "verification"


def routes(service: VerificationService) -> list[Route]:
    """Every subject of the verification API with its models and handler."""

    async def request_code(body: RequestCode) -> bytes:
        return await service.request_code(body)

    async def confirm_code(body: ConfirmCode) -> bytes:
        return await service.confirm_code(body)

    async def confirm_link(body: ConfirmLink) -> bytes:
        return await service.confirm_link(body)

    async def start_cli(body: StartCliCheck) -> bytes:
        return await service.start_cli(body)

    async def confirm_cli(body: ConfirmCli) -> bytes:
        return await service.confirm_cli(body)

    s = VerificationSubjects
    return [
        Route(
            s.REQUEST_CODE,
            RequestCode,
            CodeSent,
            request_code,
            "Send a new 6-digit code to the contact's e-mail (with a confirming link) or mobile through"
            " NOTIFY. Rate-limited per contact (rate_limited); a new code replaces the open one.",
        ),
        Route(
            s.CONFIRM_CODE,
            ConfirmCode,
            Verified,
            confirm_code,
            "Confirm a code: code_invalid (tries left), code_locked after 5 wrong tries, code_expired"
            " after 10 minutes, conflict when already used. Success publishes EmailVerified or"
            " MobileVerified on VERIFICATION_EVENTS.",
        ),
        Route(
            s.CONFIRM_LINK,
            ConfirmLink,
            Verified,
            confirm_link,
            "Confirm an e-mail by the link it carried (verification id and code).",
        ),
        Route(
            s.START_CLI,
            StartCliCheck,
            CodeSent,
            start_cli,
            "Ask the switch (request on switch.testcall.request {customer_id, number, code}) for a test"
            " call that speaks a code to the number.",
        ),
        Route(
            s.CONFIRM_CLI,
            ConfirmCli,
            Verified,
            confirm_cli,
            "Confirm the code of a CLI test call; success publishes CliVerified, and the customer"
            " service adds the number to approved_clis.",
        ),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (handlers never called)."""
    unused: Any = None
    return routes(unused)
