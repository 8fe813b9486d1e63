"""The AsyncAPI document is generated from the same route tables the services serve."""

from __future__ import annotations

from shared.asyncapi import collect, document
from shared.contracts.customer import Subjects


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
