"""The published subjects of the AsyncAPI document: what the switch, billing and integrators exchange.

The request/reply subjects come from the services' route tables (shared.asyncapi); these are the
one-way subjects: what the switch and a billing system send in, and the events and notifications
Patchbay sends out. Payloads are the shared contracts' models; `events.*` names each typed event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from shared.contracts.calls import CallRecord, CallStarted
from shared.contracts.events import REGISTRY
from shared.contracts.notify import SystemMessage
from shared.contracts.payments import BillingPayment
from shared.contracts.verification import TestCallRequest
from shared.envelope import EventEnvelope

SCHEMAS = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Published:
    """One subject pattern, who sends on it (from Patchbay's side) and its payload model."""

    key: str  # the channel's name: the address with its parameters
    address: str
    action: Literal["send", "receive"]  # send: Patchbay publishes; receive: Patchbay consumes
    model: type[BaseModel]
    description: str
    parameters: tuple[str, ...] = ()


PUBLISHED = (
    Published("switch.testcall.request", "switch.testcall.request", "send", TestCallRequest,
              "A request to the switch: call `number` and speak `code` (any reply means taken)."),
    Published("calls.started", "calls.started.{customer_id}", "receive", CallStarted,
              "The switch: a call began (stream CALLS)."),
    Published("calls.cdr", "calls.cdr.{customer_id}", "receive", CallRecord,
              "The switch: a call ended, its record with charge and cost (stream CALLS).",),
    Published("billing.payments", "billing.payments.{customer_id}", "receive", BillingPayment,
              "A billing system: a payment received (stream PAYMENTS)."),
    Published("events", "events.{category}.{stream_id}.{type}", "send", EventEnvelope,
              "Every fact, as an envelope; `data` is the event named by `type` (schemas: the"
              " `Event:<type>` components)."),
    Published("notify", "notify.{channel}.{template}.{customer_id}", "send", SystemMessage,
              "A message for the notifier to deliver (e-mail or SMS), `none` without a customer."),
)


def _parameters(item: Published) -> dict[str, Any]:
    names = [p.strip("{}") for p in item.address.split(".") if p.startswith("{")]
    return {name: {"description": f"the {name.replace('_', ' ')}"} for name in names}


def add_published(doc: dict[str, Any]) -> None:
    """Add the published subjects, their messages and payload schemas, and every typed event."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    messages = components.setdefault("messages", {})
    channels = doc.setdefault("channels", {})
    operations = doc.setdefault("operations", {})
    for item in PUBLISHED:
        schema = item.model.model_json_schema(ref_template=SCHEMAS, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[item.model.__name__] = schema
        name = f"{item.key}:Message"
        messages[name] = {"title": name, "contentType": "application/json",
                          "payload": {"$ref": SCHEMAS.format(model=item.model.__name__)}}
        channel: dict[str, Any] = {"address": item.address, "description": item.description,
                                   "messages": {"Message": {"$ref": f"#/components/messages/{name}"}}}
        if "{" in item.address:
            channel["parameters"] = _parameters(item)
        channels[item.key] = channel
        operations[f"{item.key}:{item.action}"] = {
            "action": item.action, "channel": {"$ref": f"#/channels/{item.key}"},
            "messages": [{"$ref": f"#/channels/{item.key}/messages/Message"}],
        }
    for event in sorted(REGISTRY, key=lambda e: e.__name__):
        schema = event.model_json_schema(ref_template=SCHEMAS, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[f"Event:{event.__name__}"] = schema
