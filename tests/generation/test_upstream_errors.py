"""Upstream failures: retries, Retry-After, failover, and the status mapping (docs/adr/0011). No 500 anywhere."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats

MODEL = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello"}]


def _chat(gw: Gateway, headers: dict[str, str] | None = None, model: str = MODEL) -> Any:
    return gw.client.post(
        "/api/ai/chat/completion", json={"model": model, "messages": HELLO}, headers={**gw.user(), **(headers or {})}
    )


def test_429_is_retried_then_succeeds(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    r = _chat(
        gateway,
        {"x-sim-fail-status": "429", "x-sim-fail-times": "1", "x-sim-request-key": "r429", "x-sim-retry-after": "0"},
    )
    assert r.status_code == 200
    assert len(sim_chats(simulator.url)) == 2


def test_persistent_429_becomes_rate_limited_with_retry_after(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    started = time.monotonic()
    r = _chat(gateway, {"x-sim-fail-status": "429", "x-sim-retry-after": "1"})
    assert r.status_code == 429
    assert r.json()["error"] == "RATE_LIMITED" and r.json()["statusCode"] == 429
    assert r.headers["retry-after"] == "1"
    assert len(sim_chats(simulator.url)) == 3  # three tries, honouring Retry-After between them
    assert time.monotonic() - started >= 1.9


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_retried_then_502(gateway: Gateway, simulator: ServerThread, status: int) -> None:
    gateway.enable(MODEL)
    r = _chat(gateway, {"x-sim-fail-status": str(status), "x-sim-retry-after": "0"})
    assert r.status_code == 502
    assert r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"
    assert len(sim_chats(simulator.url)) == 3


def test_5xx_cured_by_a_retry(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    r = _chat(
        gateway,
        {"x-sim-fail-status": "503", "x-sim-fail-times": "2", "x-sim-request-key": "r503", "x-sim-retry-after": "0"},
    )
    assert r.status_code == 200
    assert len(sim_chats(simulator.url)) == 3


def test_failover_through_the_configuration_fallbacks(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable("acme/model-down", fallbackModels=["openai/gpt-4o-mini"])
    r = _chat(gateway, model="acme/model-down")
    assert r.status_code == 200, r.text
    sent = sim_chats(simulator.url)[-1]
    assert sent["body"]["models"] == ["openai/gpt-4o-mini"]
    deadline = time.monotonic() + 5
    while not sql("SELECT 1 FROM ai.usage") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sql("SELECT model_id FROM ai.usage")[0]["model_id"] == "openai/gpt-4o-mini"  # the model that served
    gateway.enable("acme/other-down")
    r = _chat(gateway, model="acme/other-down")
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"


def test_timeout_becomes_502(make_gateway: MakeGateway, simulator: ServerThread) -> None:
    gw = make_gateway(upstream_timeout_s=0.3, upstream_max_tries=2)
    gw.enable(MODEL)
    r = _chat(gw, {"x-sim-latency-ms": "2000"})
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"
    assert "timed out" in r.json()["message"]


@pytest.mark.parametrize("header", ["x-sim-garbage", "x-sim-error-200"])
def test_unusable_200_answers_become_502(gateway: Gateway, header: str) -> None:
    gateway.enable(MODEL)
    r = _chat(gateway, {header: "1"})
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"


def test_key_refused_is_ai_invalid_api_key(make_gateway: MakeGateway) -> None:
    gw = make_gateway(openrouter_api_key="sk-or-v1-revoked-key")
    gw.enable(MODEL)
    r = _chat(gw)
    assert r.status_code == 401
    assert r.json()["error"] == "AI_INVALID_API_KEY"
    assert "revoked-key" not in r.text


def test_out_of_credits_and_unknown_model(make_gateway: MakeGateway) -> None:
    gw = make_gateway(openrouter_api_key="sk-or-v1-nocredit")
    gw.enable(MODEL)
    r = _chat(gw)
    assert r.status_code == 402 and r.json()["error"] == "QUOTA_EXCEEDED"
    gw2 = make_gateway()
    gw2.enable("acme/nonexistent-model")
    r = _chat(gw2, model="acme/nonexistent-model")
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"


def test_no_key_anywhere_is_ai_not_configured(make_gateway: MakeGateway) -> None:
    gw = make_gateway(openrouter_api_key=None)
    gw.enable(MODEL)
    r = _chat(gw)
    assert r.status_code == 503 and r.json()["error"] == "AI_NOT_CONFIGURED"


def test_unreachable_upstream_is_502(make_gateway: MakeGateway) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    gw = make_gateway(openrouter_base_url=f"http://127.0.0.1:{dead}/api/v1")
    gw.enable(MODEL)
    r = _chat(gw)
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"


@pytest.mark.parametrize(
    ("status", "code", "gateway_status", "tries"),
    [
        (400, "INVALID_INPUT", 400, 1),
        (422, "INVALID_INPUT", 400, 1),
        (403, "AI_INVALID_API_KEY", 401, 1),
        (413, "PAYLOAD_TOO_LARGE", 413, 1),
        (404, "AI_INVALID_MODEL", 400, 1),
        (408, "AI_UPSTREAM_UNAVAILABLE", 502, 3),  # a timeout is retried, then reported as unavailable
    ],
)
def test_every_upstream_refusal_maps_to_the_contract(
    gateway: Gateway, simulator: ServerThread, status: int, code: str, gateway_status: int, tries: int
) -> None:
    gateway.enable(MODEL)
    r = _chat(gateway, {"x-sim-fail-status": str(status), "x-sim-retry-after": "0"})
    assert r.status_code == gateway_status, r.text
    assert r.json()["error"] == code and r.json()["statusCode"] == gateway_status
    assert len(sim_chats(simulator.url)) == tries  # 4xx refusals are final: no retry


def test_upstream_context_refusal_is_token_limit_exceeded(gateway: Gateway) -> None:
    gateway.enable("sim/tiny-context")  # the local catalog check is off (models_cache_ttl_s=0): upstream refuses
    long = " ".join(["word"] * 400)
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": "sim/tiny-context", "messages": [{"role": "user", "content": long}]},
        headers=gateway.user(),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "TOKEN_LIMIT_EXCEEDED" and "context" in r.json()["message"]


def test_a_moderation_refusal_is_content_blocked_and_other_403s_are_key_errors() -> None:
    from aigateway.upstream_errors import UpstreamFailure, to_gateway_error

    flagged = UpstreamFailure(403, "Input flagged", metadata={"reasons": ["violence"], "flagged_input": "..."})
    err = to_gateway_error(flagged, "env")
    assert (err.status, err.code) == (400, "CONTENT_BLOCKED")
    err = to_gateway_error(UpstreamFailure(403, "Forbidden"), "byok")
    assert (err.status, err.code) == (401, "AI_INVALID_API_KEY") and "BYOK" in err.message
