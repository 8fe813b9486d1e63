"""The AsyncAPI document is generated from the same route tables the services serve."""

from __future__ import annotations

import json
from pathlib import Path

from shared.asyncapi import collect, document
from shared.contracts.customer import Subjects
from shared.contracts.events import REGISTRY


def test_every_customer_subject_is_documented_with_request_and_reply() -> None:
    routes = collect()
    doc = document(routes)
    assert doc["asyncapi"].startswith("3.")
    subjects = {v for k, v in vars(Subjects).items() if k.isupper()}
    assert subjects <= set(doc["channels"])
    for subject in subjects:
        reply = doc["operations"][subject]["reply"]["messages"][0]["$ref"]
        payload = doc["components"]["messages"][reply.rsplit("/", 1)[1]]["payload"]
        assert {"$ref": "#/components/schemas/ErrorReply"} in payload["oneOf"]
    assert "CustomerCard" in doc["components"]["schemas"]
    served = {r.subject for r in routes["customer"]}
    assert served == {c for c in doc["channels"] if c.startswith("customer.")}


def test_the_committed_document_is_the_generated_one() -> None:
    """`make asyncapi` was run after the last contract change (else: run it and commit docs/asyncapi.json)."""
    committed = json.loads((Path(__file__).parents[2] / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(document(collect()), sort_keys=True)), "run `make asyncapi`"


def test_replies_are_documented_as_sent() -> None:
    summary = document(collect())["components"]["schemas"]["Summary"]
    assert {"from", "to"} <= set(summary["properties"]) and "from_day" not in summary["properties"]


def test_the_subjects_an_integrator_needs_are_documented() -> None:
    doc = document(collect())
    addresses = {c["address"] for c in doc["channels"].values()}
    assert {"switch.testcall.request", "calls.started.{customer_id}", "calls.cdr.{customer_id}",
            "billing.payments.{customer_id}", "events.{category}.{stream_id}.{type}",
            "notify.{channel}.{template}.{customer_id}"} <= addresses
    schemas = doc["components"]["schemas"]
    assert {"TestCallRequest", "CallRecord", "BillingPayment", "EventEnvelope", "SystemMessage"} <= set(schemas)
    assert {f"Event:{e.__name__}" for e in REGISTRY} <= set(schemas)
    for operation in doc["operations"].values():
        assert operation["channel"]["$ref"].removeprefix("#/channels/") in doc["channels"]
