"""Simulator routes other than chat: models, key, credits, embeddings, the request log, the CLI."""

from __future__ import annotations

import base64
import math
import os
import socket
import struct
import subprocess
import sys
import time

import httpx
import pytest
from aigateway.simulator import create_app, main
from aigateway.simulator.images import image_size, png_bytes

from .conftest import KEY, Sim
from .helpers import GEN_ID

SEED_IDS = {
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-haiku",
    "anthropic/claude-sonnet-4.5",
    "google/gemini-2.5-flash-image-preview",
    "google/gemini-2.5-pro",
    "deepseek/deepseek-r1",
    "x-ai/grok-4",
    "openai/text-embedding-3-small",
    "meta-llama/llama-3.3-70b-instruct",
}


def test_models_catalogue(sim: Sim) -> None:
    r = httpx.get(sim.url + "/api/v1/models")  # no auth needed
    assert r.status_code == 200
    models = {m["id"]: m for m in r.json()["data"]}
    assert SEED_IDS <= set(models) and len(models) >= 12
    for m in models.values():
        assert {"id", "name", "context_length", "architecture", "pricing", "top_provider"} <= set(m)
        assert isinstance(m["pricing"]["prompt"], str) and float(m["pricing"]["completion"]) >= 0
        assert m["architecture"]["input_modalities"] and m["architecture"]["output_modalities"]
    image = models["google/gemini-2.5-flash-image-preview"]["architecture"]["output_modalities"]
    assert set(image) == {"image", "text"}
    assert models["openai/text-embedding-3-small"]["architecture"]["output_modalities"] == ["embeddings"]
    assert models["sim/tiny-context"]["context_length"] == 64
    assert any("audio" in m["architecture"]["input_modalities"] for m in models.values())
    authors = {mid.split("/")[0] for mid in models}
    assert authors - {"openai", "anthropic", "google", "amazon"}

    user_models = sim.client.get("/models/user").json()["data"]
    assert [m["id"] for m in user_models] == list(models)
    embeds = httpx.get(sim.url + "/api/v1/models", params={"output_modalities": "embeddings"}).json()["data"]
    assert [m["id"] for m in embeds] == ["openai/text-embedding-3-small"]
    assert sim.client.get("/embeddings/models").json()["data"] == embeds


@pytest.mark.parametrize("path", ["/key", "/auth/key"])
def test_key_valid_and_invalid(sim: Sim, path: str) -> None:
    r = sim.client.get(path)
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["label"].startswith("sk-or-v1-") and KEY not in data["label"]
    assert data["limit"] is None and data["is_free_tier"] is False and "usage" in data
    r = sim.client.get(path, headers={"Authorization": "Bearer sk-or-v1-revoked"})
    assert r.status_code == 401 and r.json() == {"error": {"message": "User not found.", "code": 401}}
    r = httpx.get(sim.url + "/api/v1" + path)
    assert r.status_code == 401 and r.json() == {"error": {"message": "No auth credentials found", "code": 401}}
    broke = sim.client.get(path, headers={"Authorization": "Bearer sk-or-v1-nocredit"}).json()["data"]
    assert broke["limit_remaining"] == 0


def test_credits_track_reported_cost(sim: Sim) -> None:
    assert sim.client.get("/credits").json()["data"] == {"total_credits": 100.0, "total_usage": 0.0}
    usage = sim.client.post(
        "/chat/completions", json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    ).json()["usage"]
    assert sim.client.get("/credits").json()["data"]["total_usage"] == usage["cost"]
    assert sim.client.get("/key").json()["data"]["usage"] == usage["cost"]
    assert httpx.get(sim.url + "/api/v1/credits").status_code == 401


def test_embeddings_float_and_base64(sim: Sim) -> None:
    body = {
        "model": "openai/text-embedding-3-small",
        "input": ["first text here", "second"],
        "dimensions": 64,
    }
    r = sim.client.post("/embeddings", json=body)
    assert r.status_code == 200
    data = r.json()
    assert GEN_ID.fullmatch(data["id"]) and data["object"] == "list"
    assert data["model"] == "openai/text-embedding-3-small" and data["provider"] == "OpenAI"
    assert data["usage"] == {
        "prompt_tokens": 3 + 1 + 1 + 1,
        "total_tokens": 6,
        "cost": 6e-7,
        "is_byok": False,
    }
    vectors = [d["embedding"] for d in data["data"]]
    assert [d["index"] for d in data["data"]] == [0, 1] and all(d["object"] == "embedding" for d in data["data"])
    assert all(len(v) == 64 and abs(math.fsum(x * x for x in v) - 1) < 1e-5 for v in vectors)
    assert vectors[0] != vectors[1]

    again = sim.client.post("/embeddings", json={**body, "input": "second"}).json()
    assert again["data"][0]["embedding"] == vectors[1]  # deterministic per input

    encoded = sim.client.post("/embeddings", json={**body, "encoding_format": "base64"}).json()
    for item, floats in zip(encoded["data"], vectors, strict=True):
        raw = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == floats

    default = sim.client.post("/embeddings", json={"model": body["model"], "input": "x"}).json()
    assert len(default["data"][0]["embedding"]) == 1536
    sized = sim.client.post(
        "/embeddings", json={"model": body["model"], "input": "x"}, headers={"x-sim-embedding-dims": "8"}
    ).json()
    assert len(sized["data"][0]["embedding"]) == 8
    tokens = sim.client.post("/embeddings", json={"model": body["model"], "input": [1, 2, 3], "dimensions": 4}).json()
    assert len(tokens["data"]) == 1 and tokens["usage"]["prompt_tokens"] == 4
    assert sim.last()["usage"] == tokens["usage"]


def test_embeddings_errors(sim: Sim) -> None:
    model = "openai/text-embedding-3-small"
    assert sim.client.post("/embeddings", json={"model": model, "input": []}).status_code == 400
    assert sim.client.post("/embeddings", json={"model": model, "input": "x", "dimensions": 0}).status_code == 400
    assert sim.client.post("/embeddings", json={"model": "nope", "input": "x"}).status_code == 400
    r = sim.client.post("/embeddings", json={"model": model, "input": "x"}, headers={"x-sim-fail-status": "503"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    r = sim.client.post(
        "/embeddings", json={"model": model, "input": "x"}, headers={"Authorization": "Bearer nocredit"}
    )
    assert r.status_code == 402


def test_request_log_and_reset(sim: Sim) -> None:
    sim.client.post(
        "/chat/completions",
        json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Title": "Sim Test", "HTTP-Referer": "https://example.com"},
    )
    entry = sim.last()
    assert entry["headers"]["x-title"] == "Sim Test" and entry["headers"]["http-referer"] == "https://example.com"
    assert entry["headers"]["authorization"] == f"Bearer {KEY}"
    assert entry["body"]["model"] == "openai/gpt-4o" and entry["stream"] is False
    for _ in range(205):
        sim.client.get("/models")
    entries = sim.requests()
    assert len(entries) == 200 and entries[-1]["seq"] == 206 and entries[0]["path"] == "/api/v1/models"
    assert httpx.post(sim.url + "/_sim/reset").json() == {"ok": True}
    assert sim.requests() == []
    assert httpx.get(sim.url + "/_sim/health").json() == {"ok": True}


def test_apps_do_not_share_state() -> None:
    assert create_app().state.sim is not create_app().state.sim


def test_png_builder() -> None:
    assert image_size("16:9") == (96, 54) and image_size("4:3") == (96, 72) and image_size("bad") == (64, 64)
    png = png_bytes(10, 5, (1, 2, 3))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (10, 5)
    assert len(png_bytes(10, 5, (1, 2, 3), 5000)) == 5000


def test_cli_help() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_cli_serves() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigateway.simulator", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert r.json() == {"ok": True}
        models = httpx.get(f"http://127.0.0.1:{port}/api/v1/models").json()["data"]
        assert any(m["id"] == "openai/gpt-4o" for m in models)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
