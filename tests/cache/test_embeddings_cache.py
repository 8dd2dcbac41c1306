"""The embeddings cache per input item, through the native and OpenAI routes."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from openai import OpenAI

from tests.support import SQL, Gateway, ServerThread, sim_log, wait_usage

MODEL = "openai/text-embedding-3-small"
ROUTE = "/api/ai/embeddings"
CACHE = {"ttlSeconds": 600, "scope": "project"}


def _enable(gw: Gateway, cache: dict[str, Any] | None = CACHE) -> str:
    return gw.enable(MODEL, inputModality=["text"], outputModality=["embeddings"], cache=cache)


def _post(gw: Gateway, body: dict[str, Any], sub: str = "bob", **headers: str) -> Any:
    return gw.client.post(ROUTE, json={"model": MODEL, **body}, headers={**gw.user(sub=sub), **headers})


def _sent_inputs(simulator: ServerThread) -> list[Any]:
    return [e["body"]["input"] for e in sim_log(simulator.url) if e["path"].endswith("/embeddings")]


def _floats(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_only_misses_go_upstream_and_merge_in_order(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    _enable(gateway)
    first = _post(gateway, {"input": ["alpha one", "beta two"]})
    assert first.status_code == 200 and first.headers["x-gateway-cache"] == "MISS"
    mixed = _post(gateway, {"input": ["gamma three", "alpha one", "delta four", "beta two"]})
    assert mixed.status_code == 200 and mixed.headers["x-gateway-cache"] == "MISS"
    assert _sent_inputs(simulator) == [["alpha one", "beta two"], ["gamma three", "delta four"]]
    a, b = (d["embedding"] for d in first.json()["data"])
    data = mixed.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2, 3]
    assert data[1]["embedding"] == a and data[3]["embedding"] == b
    full = _post(gateway, {"input": ["delta four", "gamma three"]})
    assert full.headers["x-gateway-cache"] == "HIT"
    assert [d["embedding"] for d in full.json()["data"]] == [data[2]["embedding"], data[0]["embedding"]]
    assert len(_sent_inputs(simulator)) == 2

    # The hit reads like a miss of the same inputs: same usage in the body.
    fresh = _post(gateway, {"input": ["delta four", "gamma three"], "cache": False})
    assert fresh.headers["x-gateway-cache"] == "BYPASS"
    assert full.json() == fresh.json()

    rows = wait_usage(sql, 4)
    assert [r["cached"] for r in rows] == [False, False, True, False]
    hit = rows[2]
    assert float(hit["cost_usd"]) == 0 and hit["input_tokens"] == rows[3]["input_tokens"]
    assert float(hit["saved_usd"]) == pytest.approx(float(rows[3]["cost_usd"]))
    partial = rows[1]  # billed the two misses, saved the two hits
    assert partial["input_tokens"] == 6 and float(partial["saved_usd"]) > 0


def test_vectors_stored_as_float32_bytes(gateway: Gateway, sql: SQL) -> None:
    _enable(gateway)
    r = _post(gateway, {"input": "compact storage", "dimensions": 64})
    assert r.status_code == 200
    [row] = sql("SELECT kind, body, bytes FROM ai.cache_entries")
    assert row["kind"] == "embedding" and row["bytes"] == 64 * 4 and len(bytes(row["body"])) == 256
    stored = list(struct.unpack("<64f", bytes(row["body"])))
    assert stored == r.json()["data"][0]["embedding"]


def test_float_and_base64_from_one_stored_form(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    as_float = _post(gateway, {"input": ["one form", "two forms"]}).json()["data"]
    as_b64 = _post(gateway, {"input": ["one form", "two forms"], "encoding_format": "base64"})
    assert as_b64.headers["x-gateway-cache"] == "HIT"
    for f, b in zip(as_float, as_b64.json()["data"], strict=True):
        assert _floats(b["embedding"]) == f["embedding"]
    assert len(_sent_inputs(simulator)) == 1
    # The OpenAI SDK asks for base64 and decodes it: the same numbers again.
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    sdk = client.embeddings.create(model=MODEL, input=["one form", "two forms"])
    assert [d.embedding for d in sdk.data] == [f["embedding"] for f in as_float]
    assert len(_sent_inputs(simulator)) == 1


def test_dimensions_and_model_are_in_the_key(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    assert _post(gateway, {"input": "sized"}).headers["x-gateway-cache"] == "MISS"
    assert _post(gateway, {"input": "sized", "dimensions": 32}).headers["x-gateway-cache"] == "MISS"
    assert _post(gateway, {"input": "sized", "dimensions": 32}).headers["x-gateway-cache"] == "HIT"
    assert len(_sent_inputs(simulator)) == 2


def test_user_scope_keeps_users_apart(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway, {"ttlSeconds": 600, "scope": "user"})
    assert _post(gateway, {"input": "private"}, sub="alice").headers["x-gateway-cache"] == "MISS"
    assert _post(gateway, {"input": "private"}, sub="bob").headers["x-gateway-cache"] == "MISS"
    assert _post(gateway, {"input": "private"}, sub="alice").headers["x-gateway-cache"] == "HIT"
    assert len(_sent_inputs(simulator)) == 2


def test_no_store_header_and_cache_off(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    _enable(gateway)
    r = _post(gateway, {"input": "not kept"}, **{"Cache-Control": "no-store"})
    assert r.status_code == 200 and r.headers["x-gateway-cache"] == "BYPASS"
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 0
    r = _post(gateway, {"input": "not kept", "cache": "sometimes"})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
