"""The notifier's request/reply subjects: one route table, served by shared.rpc."""

from __future__ import annotations

from typing import Any

from shared.contracts.notifier import (
    EmailSettings,
    EmailSettingsIn,
    GetMessage,
    GetSettings,
    ListMessages,
    MessagePage,
    MessageStatus,
    NotifierSubjects,
    SendMessage,
    SendReply,
    SmsSettings,
    SmsSettingsIn,
    TestEmail,
    TestResult,
    TestSms,
)
from shared.logging import current_correlation_id
from shared.rpc import Route

from notifier.application.broadcast import BroadcastService
from notifier.application.channel_settings import ChannelSettings
from notifier.application.message_queries import MessageQueries

QUEUE = "notifier"


def _with_correlation(body: Any) -> Any:
    if body.meta.correlation_id is None:
        body.meta.correlation_id = current_correlation_id()
    return body


def routes(
    *, broadcasts: BroadcastService, queries: MessageQueries, settings: ChannelSettings
) -> list[Route]:
    """Every subject of the notifier API with its models and handler."""

    async def send(body: SendMessage) -> bytes:
        return await broadcasts.send(_with_correlation(body))

    async def get_message(body: GetMessage) -> bytes:
        return (await queries.status(body)).model_dump_json().encode()

    async def list_messages(body: ListMessages) -> bytes:
        return (await queries.list(body)).model_dump_json().encode()

    async def get_email(_: GetSettings) -> bytes:
        return (await settings.email()).model_dump_json().encode()

    async def set_email(body: EmailSettingsIn) -> bytes:
        return (await settings.set_email(_with_correlation(body))).model_dump_json().encode()

    async def test_email(body: TestEmail) -> bytes:
        return (await settings.test_email(str(body.to))).model_dump_json().encode()

    async def get_sms(_: GetSettings) -> bytes:
        return (await settings.sms()).model_dump_json().encode()

    async def set_sms(body: SmsSettingsIn) -> bytes:
        return (await settings.set_sms(_with_correlation(body))).model_dump_json().encode()

    async def test_sms(body: TestSms) -> bytes:
        return (await settings.test_sms(body.to)).model_dump_json().encode()

    return [
        Route(
            NotifierSubjects.SEND,
            SendMessage,
            SendReply,
            send,
            "Queue an e-mail or SMS to the contacts of selected customers. Idempotent by meta.command_id.",
        ),
        Route(
            NotifierSubjects.GET_MESSAGE,
            GetMessage,
            MessageStatus,
            get_message,
            "A message's recipients and their delivery states.",
        ),
        Route(
            NotifierSubjects.LIST_MESSAGES,
            ListMessages,
            MessagePage,
            list_messages,
            "Sent messages newest first (by customer, channel, a recipient's state), counts by state.",
        ),
        Route(
            NotifierSubjects.GET_EMAIL_SETTINGS,
            GetSettings,
            EmailSettings,
            get_email,
            "E-mail settings (the password is never shown).",
        ),
        Route(
            NotifierSubjects.SET_EMAIL_SETTINGS,
            EmailSettingsIn,
            EmailSettings,
            set_email,
            "Replace the e-mail settings; an omitted password is kept.",
        ),
        Route(NotifierSubjects.TEST_EMAIL, TestEmail, TestResult, test_email, "Send a test e-mail now."),
        Route(
            NotifierSubjects.GET_SMS_SETTINGS,
            GetSettings,
            SmsSettings,
            get_sms,
            "SMS settings (the auth token is never shown).",
        ),
        Route(
            NotifierSubjects.SET_SMS_SETTINGS,
            SmsSettingsIn,
            SmsSettings,
            set_sms,
            "Replace the SMS settings; an omitted auth token is kept.",
        ),
        Route(NotifierSubjects.TEST_SMS, TestSms, TestResult, test_sms, "Send a test SMS now."),
    ]


def documented_routes() -> list[Route]:
    """The route table for the AsyncAPI document (handlers never called)."""
    unused: Any = None
    return routes(broadcasts=unused, queries=unused, settings=unused)
