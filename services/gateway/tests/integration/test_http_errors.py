"""One error shape for every failure, FastAPI's own included; no service answering is 503."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.servers


def assert_error(reply, status: int, code: str) -> dict:
    """The reply has the one error shape, this status and code; return the error."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert reply.headers["X-Correlation-Id"]
    return dict(body["error"])


async def test_unknown_route_is_404(gateway) -> None:
    error = assert_error(await gateway.client.get("/v1/nothing-here"), 404, "not_found")
    assert "/v1/nothing-here" in error["message"]


async def test_wrong_method_is_405_with_allow(gateway) -> None:
    reply = await gateway.client.put("/v1/customers")
    assert_error(reply, 405, "method_not_allowed")
    assert "GET" in reply.headers["Allow"]


async def test_malformed_json_is_422(gateway) -> None:
    reply = await gateway.client.post(
        "/v1/customers", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    error = assert_error(reply, 422, "validation_error")
    assert error["details"][0]["type"] == "json_invalid" and error["details"][0]["field"] is None


async def test_missing_body_and_wrong_body_type_are_422(gateway) -> None:
    assert_error(await gateway.client.post("/v1/customers"), 422, "validation_error")
    assert_error(await gateway.client.post("/v1/customers", json=[1, 2]), 422, "validation_error")
    assert_error(await gateway.client.post("/v1/customers", content=b"name=x",
                                           headers={"Content-Type": "text/plain"}), 422, "validation_error")


async def test_bad_uuid_in_path_is_422_naming_it(gateway) -> None:
    error = assert_error(await gateway.client.get("/v1/customers/not-a-uuid"), 422, "validation_error")
    assert error["details"][0]["field"] == "customer_id"
    error = assert_error(await gateway.client.delete("/v1/tokens/12"), 422, "validation_error")
    assert error["details"][0]["field"] == "token_id"


async def test_validation_details_name_each_field_without_body_prefix(gateway) -> None:
    reply = await gateway.client.post("/v1/customers", json={
        "name": "", "currency": "XXQ", "address": {"country": "ZZ"}, "tax": "101",
        "config_toml": "a = ", "debit_limit": "1e3", "bogus": 1,
    })
    error = assert_error(reply, 422, "validation_error")
    by_field = {d["field"]: d for d in error["details"]}
    assert set(by_field) == {"name", "currency", "address.country", "tax", "config_toml",
                             "debit_limit", "bogus"}
    assert "ISO 4217" in by_field["currency"]["message"]
    assert not by_field["currency"]["message"].startswith("Value error")
    assert "TOML" in by_field["config_toml"]["message"]


async def test_a_too_long_idempotency_key_is_422_naming_the_header(gateway) -> None:
    reply = await gateway.client.post("/v1/customers", json={"name": "x"},
                                      headers={"Idempotency-Key": "k" * 201})
    error = assert_error(reply, 422, "validation_error")
    assert error["details"][0]["field"] == "Idempotency-Key"


async def test_too_large_body_is_413(gateway) -> None:
    reply = await gateway.client.post("/v1/customers", json={"name": "x", "notes": "n" * 300_000})
    assert_error(reply, 413, "payload_too_large")


async def test_no_customer_service_is_503_naming_it(gateway) -> None:
    error = assert_error(await gateway.client.get(f"/v1/customers/{uuid.uuid4()}"), 503, "unavailable")
    assert "customer service did not answer" in error["message"]
    assert_error(await gateway.client.post("/v1/customers", json={"name": "x"}), 503, "unavailable")


async def test_readyz_says_what_is_missing(gateway) -> None:
    error = assert_error(await gateway.client.get("/readyz"), 503, "unavailable")
    assert [d["field"] for d in error["details"]] == ["customer"]


async def test_healthz_needs_no_token(gateway) -> None:
    reply = await gateway.client.get("/healthz", headers={"Authorization": ""})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"


async def test_client_correlation_id_is_echoed_only_when_sane(gateway) -> None:
    reply = await gateway.client.get("/healthz", headers={"X-Correlation-Id": "abc-123"})
    assert reply.headers["X-Correlation-Id"] == "abc-123"
    reply = await gateway.client.get("/healthz", headers={"X-Correlation-Id": "bad id; DROP"})
    assert reply.headers["X-Correlation-Id"] != "bad id; DROP"
    uuid.UUID(reply.headers["X-Correlation-Id"])


async def test_openapi_documents_models_errors_and_bearer_auth(gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert {"CustomerCard", "CustomerCreate", "CustomerPatch", "CustomerPage", "ErrorReply",
            "TokenCreated", "AuditSettings"} <= set(schemas)
    post = spec["paths"]["/v1/customers"]["post"]
    assert {"201", "401", "403", "409", "422", "503"} <= set(post["responses"])
    assert post["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorReply")
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    params = {p["name"] for p in spec["paths"]["/v1/customers/{customer_id}"]["patch"]["parameters"]}
    assert {"If-Match", "Idempotency-Key", "X-Audit-Reason"} <= params
    assert (await gateway.client.get("/docs")).status_code == 200


async def test_one_log_line_per_request_without_secrets(gateway) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        reply = await gateway.client.get("/v1/tokens", headers={"X-Correlation-Id": "log-check"})
    assert reply.status_code == 200
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET" and line["path"] == "/v1/tokens" and line["status"] == 200
    assert line["correlation_id"] == "log-check" and line["duration_ms"] >= 0
    assert line["actor"] == "admin"
    assert gateway.admin_token not in repr(logs) and "Bearer" not in repr(logs)
