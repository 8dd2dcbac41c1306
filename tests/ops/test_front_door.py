"""api/front_door.py over real HTTP: with an origin secret set, only requests carrying it (as the
CloudFront front door sends them) reach the routes; the refusal is the gateway's own 403."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aigateway.api import configs
from aigateway.api.app import build_app
from aigateway.api.front_door import HEADER, FrontDoor
from aigateway.api.local import local_app
from aigateway.services import Services
from fastapi import APIRouter, Request

Gateway = Any  # tests/conftest.py's Gateway

SECRET = secrets.token_hex(32)


def _echo_app(services: Services) -> Any:
    """The configs routes plus one that shows which headers reached it."""
    router = APIRouter()

    @router.get("/api/ai/_probe/headers")
    async def headers(request: Request) -> dict[str, Any]:
        return {"names": sorted(request.headers.keys())}

    return build_app(configs.router, router, services=services)


@pytest.fixture
def guarded(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(origin_secret=SECRET)


def _refused(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 403, r.text
    assert r.headers.get("x-request-id")
    body: dict[str, Any] = r.json()
    code = body["error"]["code"] if isinstance(body["error"], dict) else body["error"]
    assert body["statusCode"] == 403 and code == "AUTH_UNAUTHORIZED"
    assert SECRET not in r.text
    return body


def test_a_request_without_the_header_is_refused(guarded: Gateway) -> None:
    for path in ("/api/ai/configurations", "/api/ai/chat/completion", "/api/ai/health/x", "/api/ai/v1/models"):
        body = _refused(guarded.client.get(path, headers=guarded.admin()))
        assert "front door" in body["message"]


def test_the_health_check_is_the_one_exempt_path(guarded: Gateway) -> None:
    """The Web Adapter's readiness probe comes on loopback, without the header, at every cold start."""
    assert guarded.client.get("/api/ai/health").json() == {"status": "ok"}


def test_a_wrong_secret_is_refused(guarded: Gateway) -> None:
    wrong = SECRET[:-1] + ("0" if SECRET[-1] != "0" else "1")  # same length, one character off
    for value in (wrong, "", SECRET + "x", SECRET[:10]):
        _refused(guarded.client.get("/api/ai/configurations", headers={HEADER: value}))


def test_the_refusal_speaks_the_openai_dialect_on_v1(guarded: Gateway) -> None:
    body = _refused(guarded.client.get("/api/ai/v1/models", headers=guarded.admin()))
    assert body["error"]["code"] == "AUTH_UNAUTHORIZED" and body["error"]["type"] == "permission_error"


def test_the_refusal_carries_cors_headers(guarded: Gateway) -> None:
    r = guarded.client.get("/api/ai/configurations", headers={"Origin": "https://app.example"})
    _refused(r)
    assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_a_large_body_is_refused_before_it_is_read(guarded: Gateway) -> None:
    r = guarded.client.post("/api/ai/chat/completion", content=b"x" * (guarded.settings.max_body_bytes + 1))
    _refused(r)  # 403, not the body limit's 413


def test_the_right_secret_passes_and_the_header_goes_no_further(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(_echo_app, origin_secret=SECRET)
    ok = {HEADER: SECRET}
    assert gw.client.get("/api/ai/health", headers=ok).json() == {"status": "ok"}
    r = gw.client.get("/api/ai/configurations", headers={**ok, **gw.admin()})
    assert r.status_code == 200, r.text
    names = gw.client.get("/api/ai/_probe/headers", headers=ok).json()["names"]
    assert HEADER not in names and "host" in names


def test_without_a_secret_nothing_is_checked(gateway: Gateway) -> None:
    assert gateway.settings.origin_secret is None
    assert gateway.client.get("/api/ai/health").status_code == 200
    assert FrontDoor not in [getattr(m, "cls", None) for m in local_app(gateway.services).user_middleware]


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        FrontDoor(lambda *_: None, secret="")  # type: ignore[arg-type]


def test_a_stream_passes_through_the_check(guarded: Gateway) -> None:
    ok = {HEADER: SECRET}
    r = guarded.client.post(
        "/api/ai/configurations",
        headers={**ok, **guarded.admin()},
        json={
            "inputModality": ["text"],
            "outputModality": ["text"],
            "provider": "openrouter",
            "modelId": "openai/gpt-4o-mini",
        },
    )
    assert r.status_code == 201, r.text
    body = {"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Count to 3"}]}
    with guarded.client.stream("POST", "/api/ai/chat/completion", json=body, headers={**ok, **guarded.user()}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        frames = [line for line in s.iter_lines() if line.startswith("data: ")]
    assert len(frames) > 1 and json.loads(frames[-1].removeprefix("data: "))["done"] is True
    # Without the header the SDK's stream path still gets a JSON error it can read.
    refused = guarded.client.post("/api/ai/chat/completion", json=body, headers=guarded.user())
    assert refused.headers["content-type"].startswith("application/json")
    _refused(refused)
