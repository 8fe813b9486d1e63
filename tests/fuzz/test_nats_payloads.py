"""Malformed payloads on every NATS request subject: an error reply every time, and the services keep answering."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel
from shared.asyncapi import SERVICES, collect
from shared.rpc import Route
from shared.settings import nats_servers

from shared import bus

from .conftest import FuzzStack

pytestmark = [pytest.mark.servers, pytest.mark.fuzz]

HUGE = 900_000  # just under NATS's default max_payload (1 MB); bigger never leaves the client


def every_route() -> list[tuple[str, Route]]:
    """(service, route) of every subject: the documented tables, else the route builder."""
    found = collect()
    for service in SERVICES:
        if service in found:
            continue
        module = importlib.import_module(f"{service}.entrypoints.nats_api")
        params = inspect.signature(module.routes).parameters
        found[service] = module.routes(**dict.fromkeys(params))  # handlers never called
    return [(service, route) for service, routes in found.items() for route in routes]


def wrong_types(model: type[BaseModel]) -> dict[str, Any] | None:
    """Every field of model given a value no field type accepts; None for a model without fields."""
    if not model.model_fields:
        return None
    return {field: [[[{"not": "this"}]]] for field in model.model_fields}


def bad_payloads(model: type[BaseModel]) -> list[tuple[str, bytes]]:
    """Named payloads that must each get a validation error."""
    payloads = [
        ("not json", b'{"unterminated": '),
        ("not utf-8", b"\xff\xfe\x00{"),
        ("a list", b"[1, 2, 3]"),
        ("a string", b'"hello"'),
        ("null", b"null"),
        ("unknown field", b'{"surely_not_a_field_of_anything": 1}'),
    ]
    if (wrong := wrong_types(model)) is not None:
        payloads.append(("wrong types", orjson.dumps(wrong)))
    return payloads


ROUTES = every_route()


@pytest.fixture(scope="module")
async def client(fuzz_stack: FuzzStack) -> Any:
    nc: NatsClient = await bus.connect(nats_servers(fuzz_stack.nats_url), "provisioner",
                                          seed=fuzz_stack.seed("provisioner"),
                                          service_keys=fuzz_stack.service_keys())
    yield nc
    await nc.close()


async def _ask(nc: NatsClient, subject: str, payload: bytes) -> dict[str, Any]:
    reply = await nc.request(subject, payload, timeout=10)
    decoded = orjson.loads(reply.data)
    assert isinstance(decoded, dict), decoded
    return decoded


@pytest.mark.parametrize(("service", "route"), ROUTES, ids=[r.subject for _, r in ROUTES])
async def test_malformed_payloads_get_error_replies(
    service: str, route: Route, client: NatsClient, fuzz_stack: FuzzStack
) -> None:
    for name, payload in bad_payloads(route.request):
        reply = await _ask(client, route.subject, payload)
        assert "error" in reply, (name, reply)
        assert reply["error"]["code"] == "validation_error", (name, reply)
    # huge: every string field 900 KB long; it may even be valid, but it is answered
    fields = {f: "x" * (HUGE // max(1, len(route.request.model_fields)))
              for f in route.request.model_fields}
    huge = await _ask(client, route.subject, orjson.dumps(fields))
    assert huge, huge  # an answer (an error, or a result when a field may be that long), not a timeout
    assert fuzz_stack.alive(), fuzz_stack.errors()


async def test_every_service_still_answers(client: NatsClient, fuzz_stack: FuzzStack) -> None:
    """After the barrage, each route answers again (a malformed message stopped nothing)."""
    for _, route in ROUTES:
        reply = await _ask(client, route.subject, b"{")
        assert reply["error"]["code"] == "validation_error", (route.subject, reply)
    assert fuzz_stack.alive(), fuzz_stack.errors()
