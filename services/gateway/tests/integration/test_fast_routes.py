"""The hot card routes' fast path answers exactly as FastAPI's routes do, and sends the same commands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gateway.dependencies import expected_version
from gateway.fast_routes import FastRoutes
from shared.contracts.customer import Subjects
from shared.errors import ErrorCode

pytestmark = pytest.mark.servers

CUSTOMER = "5b0f6d1e-8a4c-4f7e-9a51-0d7c3e2b9f10"
CARD = {"id": CUSTOMER, "name": "Acme", "version": 3}
JSON = {"Content-Type": "application/json"}


def fast_routes(app: Any) -> FastRoutes:
    """The FastRoutes layer of the app's built middleware stack."""
    layer = app.middleware_stack
    while not isinstance(layer, FastRoutes):
        layer = layer.app
    return layer


def cases(viewer: str) -> Iterator[tuple[str, str, dict[str, str], bytes]]:
    """Requests the fast path serves, and requests it must hand to FastAPI."""
    path = f"/v1/customers/{CUSTOMER}"
    yield "POST", "/v1/customers", JSON, b'{"name":"Acme","currency":"EUR","tags":["b","a"]}'
    yield "POST", "/v1/customers", {**JSON, "Idempotency-Key": "k-1", "X-Audit-Reason": " asked "}, \
        '{"name":"Café \\u00e9","debit_limit":"12.50","address":{"country":"DE"}}'.encode()
    yield "POST", "/v1/customers", JSON, b'{"name":"taken"}'  # the service's error reply
    yield "POST", "/v1/customers", JSON, b'{"name":"Acme"'  # not JSON
    yield "POST", "/v1/customers", JSON, b'{"name":1}'  # not the model
    yield "POST", "/v1/customers", JSON, b'{"name":"Acme","debit_limit":NaN}'  # json.loads takes NaN
    yield "POST", "/v1/customers", JSON, b'{"name":"Acme","config":{"n":123456789012345678901234567890}}'
    yield "POST", "/v1/customers", JSON, b'{"name":"Acme","notes":"\\ud800"}'  # a lone surrogate
    yield "POST", "/v1/customers", {"Content-Type": "text/plain"}, b'{"name":"Acme"}'
    yield "POST", "/v1/customers", {**JSON, "Idempotency-Key": ""}, b'{"name":"Acme"}'
    yield "POST", "/v1/customers", {**JSON, "X-Audit-Reason": "x" * 501}, b'{"name":"Acme"}'
    yield "POST", "/v1/customers", {**JSON, "Authorization": f"Bearer {viewer}"}, b'{"name":"Acme"}'
    yield "POST", "/v1/customers", {**JSON, "Authorization": "Bearer pb_unknown"}, b'{"name":"Acme"}'
    yield "POST", "/v1/customers", {**JSON, "Authorization": ""}, b'{"name":"Acme"}'
    yield "PATCH", path, {**JSON, "If-Match": 'W/"3"'}, b'{"channels":5,"website":null,"tax":"7.50"}'
    yield "PATCH", path, {**JSON, "If-Match": "three"}, b'{"channels":5}'
    yield "PATCH", path, JSON, b'{"channels":-5}'
    yield "PATCH", path.upper().replace("/V1/CUSTOMERS", "/v1/customers"), JSON, b'{"channels":5}'
    yield "GET", path, {"Authorization": f"Bearer {viewer}"}, b""
    yield "GET", path.replace("-", ""), {}, b""
    yield "GET", "/v1/customers/not-an-id", {}, b""


async def test_fast_path_answers_and_commands_equal_fastapis(gateway, fake_customer) -> None:
    def reply(subject: str, body: dict[str, Any]) -> dict[str, Any]:
        if "taken" in str(body):
            return {"error": {"code": ErrorCode.NAME_TAKEN, "message": "taken", "details": []}}
        return CARD

    for subject in (Subjects.CREATE, Subjects.UPDATE, Subjects.GET):
        fake_customer.replies[subject] = reply
    viewer = await gateway.make_token("viewer")
    for token in (viewer, gateway.admin_token):  # into the token cache: the fast path reads only the cache
        await gateway.client.get(f"/v1/customers/{CUSTOMER}", headers={"Authorization": f"Bearer {token}"})
    layer = fast_routes(gateway.app)

    async def send(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
        fake_customer.seen.clear()
        answer = await gateway.client.request(method, path, headers={**headers, "X-Request-Id": "same-id"},
                                              content=body)
        # the command's signature or MAC covers the second it was sent: not compared
        sent = [(s, {k: v for k, v in h.items() if not k.startswith("Patchbay-")}, b)
                for s, h, b in fake_customer.seen]
        return answer.status_code, sorted(answer.headers.multi_items()), answer.content, sent

    served_before = layer.served
    fast = [await send(*case) for case in cases(viewer)]
    assert layer.served - served_before == 5  # the first two creates, the error reply, a PATCH, a GET
    gateway.app.dependency_overrides[expected_version] = expected_version  # FastAPI alone, same routes
    try:
        slow = [await send(*case) for case in cases(viewer)]
    finally:
        gateway.app.dependency_overrides.clear()
    assert layer.served - served_before == 5
    for case, one, other in zip(cases(viewer), fast, slow, strict=True):
        assert one == other, case
    statuses = [answer[0] for answer in fast]
    assert statuses == [201, 201, 409, *[422] * 8, 403, 401, 401, 200, 422, 422, 200, 200, 200, 422]
    assert fast[1][3][0][2]["meta"]["reason"] == "asked"
    assert fast[1][3][0][2]["customer"] == {"name": "Café é", "debit_limit": "12.5", "address": {"country": "DE"}}


async def test_a_body_read_by_the_fast_path_is_given_again_to_fastapi(gateway, fake_customer) -> None:
    fake_customer.replies[Subjects.CREATE] = CARD

    def chunks(body: bytes) -> Any:
        async def gen() -> Any:  # chunked: the body comes in two messages
            yield body[:5]
            yield body[5:]
        return gen()

    served = fast_routes(gateway.app).served
    answer = await gateway.client.post("/v1/customers", content=chunks(b'{"name":"Acme"}'), headers=JSON)
    assert answer.status_code == 201, answer.text
    assert fast_routes(gateway.app).served == served + 1
    assert fake_customer.last(Subjects.CREATE)[1]["customer"] == {"name": "Acme"}
    # read whole by the fast path, refused by the model: FastAPI reads it again and names the field
    answer = await gateway.client.post("/v1/customers", content=chunks(b'{"name":1,"currency":"EUR"}'),
                                       headers=JSON)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["error"]["details"]] == ["name"]
    assert fast_routes(gateway.app).served == served + 1


async def test_a_body_over_the_limit_is_413_on_the_fast_path(gateway, fake_customer) -> None:
    big = b'{"name":"' + b"x" * (gateway.settings.max_body_bytes + 10) + b'"}'

    async def chunks() -> Any:  # no Content-Length: the limit is met while reading
        yield big[:1000]
        yield big[1000:]

    answer = await gateway.client.post("/v1/customers", content=chunks(), headers=JSON)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert fake_customer.seen == []
    assert str(uuid.UUID(answer.headers["X-Correlation-Id"]))


def board_cases(viewer: str) -> Iterator[tuple[str, dict[str, str], int | None]]:
    """Board queries (query string, headers, the fast path's answer or None for FastAPI's)."""
    for query in ("", "limit=50", "sort=-created_at&limit=10", "tag=t1", "tag=a,b&tag=c&tag=", "status=active,penalty",
                  "country=DE&currency=EUR", "country=DE,FR&currency=EUR&currency=USD", "q=acme%20ops", "q=caf%C3%A9",
                  "q=", "q=+", "cursor=WyJuYW1lIiwiYSIsIjEiXQ&sort=name&limit=1000", "limit=1&sort=-channels",
                  "created_from=2026-01-01T00:00:00Z&created_to=2026-02-01", "created_from=2026-01-01T10:00:00%2B02:00",
                  "format=json", "tag=&unknown=1&unknown=2", "currency=eur", "sort=bogus", "status=&country=", "limit=%2050"):
        yield query, {}, 200
    yield "limit=5", {"Authorization": f"Bearer {viewer}"}, 200
    yield "limit=5", {"Accept": "application/json"}, 200
    for query in ("limit=0", "limit=1001", "limit=abc", "limit=", "limit=5.5", "q=" + "x" * 201, "status=bogus",
                  "currency=EURO", "country=Germany", "created_from=yesterday", "created_to=", "format=xml",
                  "format=", "format=csv", "limit=5&limit=6", "q=a&q=b", "sort=name&sort=tax",
                  "cursor=" + "c" * 2001, "q=%00", "tag=a%00b"):
        yield query, {}, None
    yield "limit=5", {"Accept": "text/csv"}, None
    yield "limit=5", {"Authorization": ""}, None
    yield "limit=5", {"Authorization": "Bearer pb_unknown"}, None
    yield "limit=5", {"Authorization": "Basic abc"}, None


async def test_the_board_on_the_fast_path_answers_and_asks_as_fastapi(gateway, fake_customer) -> None:
    def page(subject: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("sort") == "bogus":
            return {"error": {"code": ErrorCode.VALIDATION, "message": "cannot sort by 'bogus'",
                              "details": [{"field": "sort", "message": "cannot sort by 'bogus'"}]}}
        card = {**CARD, "status": "active", "currency": "EUR", "tags": ["t1"], "created_at": "2026-01-01T00:00:00Z"}
        return {"items": [card], "next_cursor": None if body.get("cursor") else "c2", "total": 2,
                "status_counts": {"active": 2, "inactive": 0, "pending_approval": 0, "penalty": 0}}

    fake_customer.replies[Subjects.LIST] = page
    viewer = await gateway.make_token("viewer")
    for token in (viewer, gateway.admin_token):
        await gateway.client.get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    layer = fast_routes(gateway.app)

    async def send(query: str, headers: dict[str, str]) -> tuple[Any, ...]:
        fake_customer.seen.clear()
        answer = await gateway.client.get(f"/v1/customers?{query}" if query else "/v1/customers",
                                          headers={**headers, "X-Request-Id": "same-id"})
        sent = [(s, {k: v for k, v in h.items() if not k.startswith("Patchbay-")}, b)
                for s, h, b in fake_customer.seen]
        return answer.status_code, sorted(answer.headers.multi_items()), answer.content, sent

    cases = list(board_cases(viewer))
    fast = []
    for query, headers, served in cases:
        before = layer.served
        fast.append(await send(query, headers))
        assert layer.served - before == (served is not None), (query, headers, fast[-1][:3])
    gateway.app.dependency_overrides[expected_version] = expected_version  # FastAPI alone, same routes
    try:
        before = layer.served
        slow = [await send(query, headers) for query, headers, _ in cases]
        assert layer.served == before
    finally:
        gateway.app.dependency_overrides.clear()
    for case, one, other in zip(cases, fast, slow, strict=True):
        assert one == other, case
    statuses = {case[0]: answer[0] for case, answer in zip(cases, fast, strict=True)}
    assert statuses["sort=bogus"] == 422 and statuses["limit=0"] == 422 and statuses["format=csv"] == 200
    assert statuses["q=a&q=b"] == 200 and [a[0] for a in fast[-3:]] == [401, 401, 401]
    assert all(answer[0] == 200 for (_, _, served), answer in zip(cases, fast, strict=True) if served == 200
               and answer is not fast[cases.index(("sort=bogus", {}, 200))])
    asked = {case[0]: answer[3][0][2] for case, answer in zip(cases, fast, strict=True) if answer[3]}
    assert asked["tag=a,b&tag=c&tag="]["tag"] == ["a", "b", "c"]
    assert asked["created_from=2026-01-01T10:00:00%2B02:00"]["created_from"] == "2026-01-01T10:00:00+02:00"
    assert asked["q=caf%C3%A9"]["q"] == "café" and asked["limit=%2050"]["limit"] == 50
