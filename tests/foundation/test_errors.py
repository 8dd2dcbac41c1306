"""Every failure has the contract's body: 404, 405, 413 (declared and chunked), 500, DB down, CORS."""

from __future__ import annotations

import time
from typing import Any

import httpx
from aigateway.api.app import build_app
from aigateway.api.local import local_app
from aigateway.local import EmbeddedPostgres
from fastapi import APIRouter

from tests.support import Gateway, MakeGateway


def test_unknown_route_is_a_not_found_body(gateway: Gateway) -> None:
    r = gateway.client.get("/api/ai/nope", headers=gateway.admin())
    assert r.status_code == 404
    assert r.json() == {
        "error": "NOT_FOUND",
        "message": "Endpoint GET /api/ai/nope not found",
        "statusCode": 404,
        "nextActions": "Please check the API documentation for available endpoints",
    }
    assert r.headers["x-request-id"]


def test_wrong_method_is_405_with_the_error_body(gateway: Gateway) -> None:
    r = gateway.client.put("/api/ai/configurations", headers=gateway.admin())
    assert r.status_code == 405 and r.json()["error"] == "METHOD_NOT_ALLOWED"


def test_body_over_the_limit_is_413_before_parsing(make_gateway: MakeGateway) -> None:
    gw = make_gateway(max_body_bytes=2048)
    big = b'{"model": "x", "messages": [' + b" " * 4096 + b"]}"
    r = gw.client.post(
        "/api/ai/configurations", content=big, headers={**gw.admin(), "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"] == "PAYLOAD_TOO_LARGE" and r.json()["statusCode"] == 413

    def chunks() -> Any:
        for _ in range(8):
            yield b" " * 512  # no Content-Length: the limit must still hold

    r = gw.client.post(
        "/api/ai/configurations", content=chunks(), headers={**gw.admin(), "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"] == "PAYLOAD_TOO_LARGE"
    # A chunked body under the limit is replayed to the route intact.
    r = gw.client.post(
        "/api/ai/configurations",
        content=iter([b'{"inputModality":["text"],', b'"outputModality":["text"],"modelId":"a/b"}']),
        headers={**gw.admin(), "content-type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_unexpected_errors_are_a_generic_500_without_internals(make_gateway: MakeGateway, caplog: Any) -> None:
    boom = APIRouter()

    @boom.get("/api/ai/boom")
    async def explode() -> None:
        raise RuntimeError("db password is hunter2")

    gw = make_gateway(app_factory=lambda svc: build_app(boom, services=svc))
    r = gw.client.get("/api/ai/boom", headers={"x-request-id": "chosen-by-caller"})
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "INTERNAL_ERROR" and body["statusCode"] == 500
    rid = r.headers["x-request-id"]
    assert rid != "chosen-by-caller" and len(rid) == 32  # ids are the server's, never the caller's
    assert rid in body["message"]
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    # The server keeps serving after it.
    assert gw.client.get("/api/ai/health").json() == {"status": "ok"}


def test_database_down_is_503_quickly(make_gateway: MakeGateway) -> None:
    gw = make_gateway(
        database_url="postgresql://postgres@/postgres?host=/nonexistent-socket-dir", db_connect_timeout_s=2
    )
    started = time.monotonic()
    r = gw.client.get("/api/ai/configurations", headers=gw.admin())
    assert r.status_code == 503
    assert r.json()["error"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - started < 5


def test_database_down_mid_life_then_back(gateway: Gateway, pg: EmbeddedPostgres) -> None:
    assert gateway.client.get("/api/ai/configurations", headers=gateway.admin()).status_code == 200
    pg.stop()
    try:
        r = gateway.client.get("/api/ai/configurations", headers=gateway.admin())
        assert r.status_code == 503 and r.json()["error"] == "SERVICE_UNAVAILABLE"
    finally:
        pg.restart()
    # The dropped connection is replaced: no restart of the gateway needed.
    assert gateway.client.get("/api/ai/configurations", headers=gateway.admin()).status_code == 200


def test_cors_reflects_the_origin_with_credentials(gateway: Gateway) -> None:
    r = gateway.client.options(
        "/api/ai/chat/completion",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-api-key",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-credentials"] == "true"
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-api-key" in allowed and "content-type" in allowed
    r = gateway.client.get("/api/ai/configurations", headers={**gateway.admin(), "Origin": "https://x.dev"})
    assert r.headers["access-control-allow-origin"] == "https://x.dev"


def test_openapi_document_and_docs_are_served(gateway: Gateway) -> None:
    doc = gateway.client.get("/openapi.json").json()
    assert "/api/ai/chat/completion" in doc["paths"] and "/api/ai/configurations" in doc["paths"]
    assert gateway.client.get("/docs").status_code == 200


def test_local_app_mounts_every_router(gateway: Gateway) -> None:
    paths = set(local_app(gateway.services).openapi()["paths"])
    for path in (
        "/api/ai/chat/completion",
        "/api/ai/image/generation",
        "/api/ai/embeddings",
        "/api/ai/configurations",
        "/api/ai/usage",
        "/api/ai/usage/summary",
        "/api/ai/audit",
        "/api/ai/models",
        "/api/ai/gateway/config",
        "/api/ai/limits",
        "/api/ai/v1/chat/completions",
    ):
        assert path in paths, path
    assert isinstance(httpx.get(gateway.url + "/api/ai/health").json(), dict)


def test_every_error_carries_one_request_id(make_gateway: Any) -> None:
    """404, 405, 400, 413 and the last-resort 500 each send `x-request-id` exactly once."""
    boom = APIRouter()

    @boom.get("/api/ai/boom")
    async def explode() -> None:
        raise RuntimeError("boom")

    gw = make_gateway(max_body_bytes=2048, app_factory=lambda svc: build_app(boom, services=svc))
    answers = [
        gw.client.get("/api/ai/nope"),
        gw.client.put("/api/ai/boom"),
        gw.client.post("/api/ai/chat/completion", content=b"x" * 4096, headers={"content-type": "application/json"}),
        gw.client.get("/api/ai/boom"),
    ]
    assert [r.status_code for r in answers] == [404, 405, 413, 500]
    for r in answers:
        assert len(r.headers.get_list("x-request-id")) == 1, (r.status_code, r.headers)


def test_openai_routes_answer_every_failure_in_openai_shape(make_gateway: Any) -> None:
    """Under /api/ai/v1 the same error (404, 405, 413, 500) comes in OpenAI's shape, nextActions kept."""
    boom = APIRouter()

    @boom.get("/api/ai/v1/boom")
    async def explode() -> None:
        raise RuntimeError("boom")

    gw = make_gateway(max_body_bytes=2048, app_factory=lambda svc: build_app(boom, services=svc))
    cases = {
        404: gw.client.get("/api/ai/v1/nope"),
        405: gw.client.put("/api/ai/v1/boom"),
        413: gw.client.post("/api/ai/v1/boom", content=b"x" * 4096, headers={"content-type": "application/json"}),
        500: gw.client.get("/api/ai/v1/boom"),
    }
    for status, r in cases.items():
        assert r.status_code == status
        body = r.json()
        assert body["statusCode"] == status and isinstance(body["error"], dict), body
        assert body["error"]["message"] == body["message"] and body["error"]["code"]
    assert cases[404].json()["error"]["type"] == "not_found_error"
    assert cases[500].json()["error"]["type"] == "server_error" and cases[500].json()["nextActions"]
