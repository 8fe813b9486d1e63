"""Operator broadcasts: resolve recipients, render each one's copy, queue them all in one statement."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import structlog
from shared.contracts.notifier import SendMessage, SendReply, Skipped
from shared.envelope import Metadata
from shared.errors import ErrorCode, ErrorDetail, ServiceError
from shared.eventstore import DuplicateCommand, EventStore
from shared.idempotency import answered_before, fingerprint
from shared.ids import new_id

from notifier.adapters.customer_directory import Card, CustomerDirectory
from notifier.adapters.delivery_store import DeliveryStore, NewDelivery, NewMessage
from notifier.application.channel_settings import ChannelSettings
from notifier.domain.delivery import message_queued_event
from notifier.domain.rendering import BROADCAST_FIELDS, UnknownPlaceholder, check, render

log = structlog.get_logger(__name__)

NO_ADDRESS = {"email": "no contact with an e-mail address", "sms": "no contact with a mobile number"}


def contact_values(card: Card, contact: dict[str, Any]) -> dict[str, str]:
    """The placeholder values of one recipient (text only)."""
    return {
        "customer.id": str(card.get("id") or ""),
        "customer.name": str(card.get("name") or ""),
        "contact.id": str(contact.get("id") or ""),
        "contact.name": str(contact.get("name") or ""),
        "contact.email": str(contact.get("email") or ""),
        "contact.mobile": str(contact.get("mobile") or ""),
        "contact.phone": str(contact.get("phone") or ""),
        "contact.contact_type": str(contact.get("contact_type") or ""),
    }


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def recipients(
    cmd: SendMessage, message_id: UUID, cards: Iterable[Card]
) -> tuple[list[NewDelivery], list[Skipped]]:
    """One delivery per distinct address of every selected customer's contacts; the rest skipped."""
    field = "email" if cmd.channel == "email" else "mobile"
    seen: set[str] = set()
    out: list[NewDelivery] = []
    skipped: list[Skipped] = []
    for card in cards:
        found = 0
        for contact in card.get("contacts") or []:
            address = str(contact.get(field) or "").strip()
            if not address:
                continue
            found += 1
            key = address.lower()
            if key in seen:  # one copy per address, even if two contacts share it
                continue
            seen.add(key)
            values = contact_values(card, contact)
            out.append(
                NewDelivery(
                    delivery_id=new_id(),
                    idempotency_key=f"{message_id}:{key}",
                    recipient=address,
                    customer_id=_uuid(card.get("id")),
                    contact_id=_uuid(contact.get("id")),
                    subject=render(cmd.subject, values) if cmd.subject else None,
                    body=render(cmd.body, values),
                )
            )
        if not found:
            skipped.append(Skipped(customer_id=card["id"], reason=NO_ADDRESS[cmd.channel]))
    return out, skipped


class BroadcastService:
    """Handles `notifier.cmd.send`."""

    def __init__(
        self,
        *,
        store: DeliveryStore,
        events: EventStore,
        directory: CustomerDirectory,
        settings: ChannelSettings,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.events = events
        self.directory = directory
        self.settings = settings
        self.wake = wake

    async def send(self, cmd: SendMessage) -> bytes:
        """Queue the message for every recipient; a retried command answers its first reply."""
        command_id = cmd.meta.command_id
        request = fingerprint(cmd) if command_id else None
        # a retry answers the first reply; another request with the same id, a conflict
        if command_id and (answer := await answered_before(self.events, command_id, request)) is not None:
            return answer
        self._check_placeholders(cmd)
        configured = await (
            self.settings.smtp_config() if cmd.channel == "email" else self.settings.sms_config()
        )
        if configured is None:
            raise ServiceError(
                ErrorCode.CONFLICT, f"no {cmd.channel} settings yet: PUT /v1/settings/{cmd.channel} first"
            )
        cid = cmd.meta.correlation_id
        if cmd.customer_ids is not None:
            ids = list(dict.fromkeys(cmd.customer_ids))
            cards, missing = await self.directory.get_many(ids, cid)
        else:
            assert cmd.filter is not None
            cards, missing = await self.directory.matching(cmd.filter, cid), []
        message_id = new_id()
        deliveries, skipped = recipients(cmd, message_id, cards)
        skipped = [Skipped(customer_id=i, reason=r) for i, r in missing] + skipped
        reply = SendReply(message_id=message_id, recipients=len(deliveries), skipped=skipped)
        data = reply.model_dump_json()
        meta = Metadata(
            actor=cmd.meta.actor, correlation_id=cid, command_id=command_id, reason=cmd.meta.reason
        )
        event = message_queued_event(
            message_id=message_id,
            channel=cmd.channel,
            subject=cmd.subject,
            recipients=len(deliveries),
            skipped=len(skipped),
            metadata=meta,
        )
        msg = NewMessage(
            message_id=message_id,
            kind="broadcast",
            channel=cmd.channel,
            metadata=meta,
            deliveries=deliveries,
            subject=cmd.subject,
            body=cmd.body,
            skipped=[s.model_dump(mode="json") for s in skipped],
        )
        try:
            await self.store.queue(msg, events=[event],
                                   reply=(command_id, data, request) if command_id else None)
        except DuplicateCommand:  # the same command id committed meanwhile
            assert command_id is not None
            answer = await answered_before(self.events, command_id, request)
            assert answer is not None
            return answer
        self.wake()
        log.info(
            "broadcast_queued",
            message_id=str(message_id),
            channel=cmd.channel,
            recipients=len(deliveries),
            skipped=len(skipped),
        )
        return data.encode()

    @staticmethod
    def _check_placeholders(cmd: SendMessage) -> None:
        details = []
        for name, text in (("subject", cmd.subject), ("body", cmd.body)):
            try:
                check(text or "", BROADCAST_FIELDS)
            except UnknownPlaceholder as exc:
                details.append(
                    ErrorDetail(
                        field=name,
                        message=f"{exc}; offered: {', '.join(BROADCAST_FIELDS)}",
                        type="unknown_placeholder",
                    )
                )
        if details:
            raise ServiceError(ErrorCode.VALIDATION, "the message uses unknown placeholders", details)
