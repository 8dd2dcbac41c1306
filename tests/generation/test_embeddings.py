"""Embeddings over real HTTP against the simulator (docs/api.md#embeddings-native).

The simulator's vectors are deterministic (seeded by the input), float32-exact, and its usage is
words + 1 per input, so shapes, encodings and usage rows can be compared exactly.
"""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import pytest

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_log, wait_usage

MODEL = "openai/text-embedding-3-small"
ROUTE = "/api/ai/embeddings"


def _enable(gw: Gateway, model: str = MODEL) -> str:
    return gw.enable(model, inputModality=["text"], outputModality=["embeddings"])


def _post(gw: Gateway, body: dict[str, Any], headers: dict[str, str] | None = None, model: str = MODEL) -> Any:
    auth = {**gw.user(sub="bob"), **(headers or {})}
    return gw.client.post(ROUTE, json={"model": model, **body}, headers=auth)


def _sim_embeddings(simulator: ServerThread) -> list[dict[str, Any]]:
    return [e for e in sim_log(simulator.url) if e["path"].endswith("/embeddings")]


def test_string_input_shape_upstream_body_and_usage_row(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    config_id = _enable(gateway)
    r = _post(gateway, {"input": "the quick brown fox", "user": "ignored"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"object", "data", "metadata"} and body["object"] == "list"
    [item] = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    vector = item["embedding"]
    assert len(vector) == 1536 and all(isinstance(x, float) for x in vector)
    assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-4)

    [sent] = _sim_embeddings(simulator)
    assert sent["body"] == {"model": MODEL, "input": "the quick brown fox", "encoding_format": "float"}
    reported = sent["usage"]
    assert reported["prompt_tokens"] == 5  # four words + 1 per input (the simulator's formula)
    assert body["metadata"] == {
        "model": sent["model"],
        "usage": {"promptTokens": reported["prompt_tokens"], "totalTokens": reported["total_tokens"]},
    }

    [row] = wait_usage(sql)
    assert row["request_id"] == r.headers["x-request-id"]
    assert row["kind"] == "embedding" and str(row["config_id"]) == config_id
    assert row["model_id"] == MODEL and row["user_id"] == "bob" and row["key_source"] == "env"
    assert row["input_tokens"] == reported["prompt_tokens"]
    assert row["output_tokens"] is None  # total - prompt = 0, stored as NULL
    assert row["image_count"] is None
    assert float(row["cost_usd"]) == pytest.approx(reported["cost"])


def test_list_input_gives_one_vector_per_input_in_order(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    single = _post(gateway, {"input": "second text"}).json()["data"][0]["embedding"]
    r = _post(gateway, {"input": ["first text", "second text"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert data[1]["embedding"] == single  # deterministic per input, whatever its position
    assert data[0]["embedding"] != data[1]["embedding"]
    usage = r.json()["metadata"]["usage"]
    assert usage == {"promptTokens": 6, "totalTokens": 6}
    assert _sim_embeddings(simulator)[-1]["body"]["input"] == ["first text", "second text"]


def test_base64_encoding_decodes_to_the_float_vector(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    floats = _post(gateway, {"input": "encode me"}).json()["data"][0]["embedding"]
    r = _post(gateway, {"input": "encode me", "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    encoded = r.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == floats
    assert _sim_embeddings(simulator)[-1]["body"]["encoding_format"] == "base64"


def test_dimensions_are_honoured(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    r = _post(gateway, {"input": ["a b", "c d"], "dimensions": 256})
    assert r.status_code == 200, r.text
    assert [len(d["embedding"]) for d in r.json()["data"]] == [256, 256]
    assert _sim_embeddings(simulator)[-1]["body"]["dimensions"] == 256


def test_many_inputs_in_one_large_answer(gateway: Gateway, sql: SQL) -> None:
    _enable(gateway)
    texts = [f"document number {i}" for i in range(300)]
    r = _post(gateway, {"input": texts})
    assert r.status_code == 200
    data = r.json()["data"]
    assert len(data) == 300 and [d["index"] for d in data] == list(range(300))
    assert len(r.content) > 300 * 1536 * 8
    assert r.json()["metadata"]["usage"]["promptTokens"] == 300 * 4
    [row] = wait_usage(sql)
    assert row["input_tokens"] == 1200


def test_input_caps_name_the_field(make_gateway: MakeGateway, simulator: ServerThread, sql: SQL) -> None:
    gw = make_gateway(max_embedding_inputs=3)
    _enable(gw)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": ["a", "b", "c", "d"]}, "input"),
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["a", ""]}, "input.1"),
        ({"input": [1, 2]}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": -1}, "dimensions"),
        ({}, "input"),
    ]
    for body, field in cases:
        r = _post(gw, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "INVALID_INPUT" and r.json()["statusCode"] == 400
        assert r.json()["message"].startswith(f"Validation error: {field}"), (body, r.json())
    assert "at most 3" in _post(gw, {"input": ["a", "b", "c", "d"]}).json()["message"]
    assert _post(gw, {"input": ["a", "b", "c"]}).status_code == 200
    assert len(_sim_embeddings(simulator)) == 1  # only the valid request went upstream


def test_model_must_be_enabled_and_caller_authenticated(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    r = _post(gateway, {"input": "hello"})
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"
    assert MODEL in r.json()["message"]
    config_id = _enable(gateway)
    gateway.client.delete(f"/api/ai/configurations/{config_id}", headers=gateway.admin())
    r = _post(gateway, {"input": "hello"})
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"
    r = gateway.client.post(ROUTE, json={"model": MODEL, "input": "hello"})
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_CREDENTIALS"
    assert _sim_embeddings(simulator) == []
    assert sql("SELECT * FROM ai.usage") == []


def test_upstream_failures_are_mapped(make_gateway: MakeGateway, simulator: ServerThread, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1)
    down = "openai/text-embedding-down"
    _enable(gw, down)
    r = _post(gw, {"input": "hello"}, model=down)
    assert r.status_code == 502
    assert r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE" and r.json()["statusCode"] == 502

    _enable(gw)
    r = _post(gw, {"input": "hello"}, {"x-sim-fail-status": "429", "x-sim-retry-after": "2"})
    assert r.status_code == 429 and r.json()["error"] == "RATE_LIMITED"
    assert r.headers["retry-after"] == "2"
    r = _post(gw, {"input": "hello"}, {"x-sim-garbage": "1"})
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"
    nonexistent = "openai/nonexistent-embedder"
    _enable(gw, nonexistent)
    r = _post(gw, {"input": "hello"}, model=nonexistent)
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"

    broke = make_gateway(openrouter_api_key="sk-or-v1-nocredit-key", upstream_max_tries=1)
    r = _post(broke, {"input": "hello"})
    assert r.status_code == 402 and r.json()["error"] == "QUOTA_EXCEEDED"
    time.sleep(0.3)
    assert sql("SELECT * FROM ai.usage") == []  # failures cost nothing and record nothing


def test_content_policy_applies_to_every_input(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(
        MODEL,
        inputModality=["text"],
        outputModality=["embeddings"],
        contentPolicy={"denyPatterns": ["secret\\s{1,2}plan"]},
    )
    r = _post(gateway, {"input": ["harmless", "the Secret plan"]})
    assert r.status_code == 400 and r.json()["error"] == "CONTENT_BLOCKED"
    assert _sim_embeddings(simulator) == []
    assert _post(gateway, {"input": ["harmless", "the public plan"]}).status_code == 200


def test_an_answer_that_could_exceed_the_response_cap_is_refused_before_the_call(
    make_gateway: MakeGateway, simulator: ServerThread, sql: SQL
) -> None:
    """With a buffered response cap (Lambda's 6 MB), the worst case of the answer is checked first:
    the refusal names the limit and how many inputs fit, nothing goes upstream, nothing is billed."""
    gw = make_gateway(max_response_bytes=1_000_000)
    _enable(gw)
    before = len(_sim_embeddings(simulator))
    # 1536 dims x 25 bytes + 64 per input: 25 inputs fit in a million bytes, 26 do not.
    r = _post(gw, {"input": [f"t{i}" for i in range(26)]})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "RESPONSE_TOO_LARGE" and "at most 25" in r.json()["message"]
    assert "base64" in r.json()["nextActions"]
    assert len(_sim_embeddings(simulator)) == before and not sql("SELECT 1 FROM ai.usage")
    assert _post(gw, {"input": [f"t{i}" for i in range(25)]}).status_code == 200
    # base64 is counted at its own size (8,194 bytes per vector here), and `dimensions` is honoured.
    assert _post(gw, {"input": [f"t{i}" for i in range(26)], "encoding_format": "base64"}).status_code == 200
    r = gw.client.post(
        "/api/ai/v1/embeddings",
        json={"model": MODEL, "input": [f"t{i}" for i in range(150)], "dimensions": 256},
        headers=gw.user(sub="bob"),
    )
    assert r.status_code == 200, r.text
    r = gw.client.post("/api/ai/v1/embeddings", json={"model": MODEL, "input": ["t"] * 200}, headers=gw.user(sub="bob"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "RESPONSE_TOO_LARGE", r.text
