"""Paid features are the admin's to allow (per configuration, `requestPolicy`), and a configuration
serves only the routes and content parts its modalities name. Everything refused is a 400 before
any upstream call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Gateway, ServerThread, sim_chats

MODEL = "openai/gpt-4o-mini"
NATIVE = "/api/ai/chat/completion"
OPENAI = "/api/ai/v1/chat/completions"
ASK = [{"role": "user", "content": "news please"}]
PDF = {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}}


def _native(gw: Gateway, **fields: Any) -> Any:
    return gw.client.post(NATIVE, json={"model": MODEL, "messages": ASK, **fields}, headers=gw.user("anon", "a1"))


def _openai(gw: Gateway, **fields: Any) -> Any:
    return gw.client.post(OPENAI, json={"model": MODEL, "messages": ASK, **fields}, headers=gw.user("anon", "a1"))


def _last_sent(sim: ServerThread) -> dict[str, Any]:
    body: dict[str, Any] = sim_chats(sim.url)[-1]["body"]
    return body


@pytest.mark.parametrize(
    "fields",
    [
        {"webSearch": {"enabled": True, "engine": "exa"}},
        {"webSearch": {"enabled": True, "engine": "native"}},
        {"webSearch": {"enabled": True, "maxResults": 10}},
        {"fileParser": {"enabled": True, "pdf": {"engine": "mistral-ocr"}}},
        {"fileParser": {"enabled": True, "pdf": {"engine": "native"}}},
    ],
)
def test_native_paid_options_outside_the_defaults_are_refused(
    gateway: Gateway, simulator: ServerThread, fields: dict[str, Any]
) -> None:
    gateway.enable(MODEL)
    before = len(sim_chats(simulator.url))
    r = _native(gateway, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "FEATURE_NOT_ALLOWED"
    assert "not allowed" in r.json()["message"] or "at most" in r.json()["message"]
    assert len(sim_chats(simulator.url)) == before


def test_native_defaults_still_work_and_pin_the_free_parser(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    r = _native(gateway, webSearch={"enabled": True, "maxResults": 3})
    assert r.status_code == 200, r.text
    assert _last_sent(simulator)["plugins"] == [{"id": "web", "max_results": 3}]
    r = _native(gateway, fileParser={"enabled": True})
    assert r.status_code == 200, r.text
    assert _last_sent(simulator)["plugins"] == [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]
    # a file sent with no parser at all gets the free one, never OpenRouter's default (OCR)
    r = gateway.client.post(
        NATIVE,
        json={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "sum"}, PDF]}]},
        headers=gateway.user(),
    )
    assert r.status_code == 200, r.text
    assert _last_sent(simulator)["plugins"] == [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]


@pytest.mark.parametrize(
    "plugins",
    [
        [{"id": "web", "engine": "exa"}],
        [{"id": "web", "max_results": 50}],
        [{"id": "web", "max_results": "5"}],
        [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}],
        [{"id": "auto-router"}],
        [{"id": "moderation"}],
        [{"engine": "exa"}],
    ],
)
def test_openai_plugins_are_allow_listed(gateway: Gateway, plugins: list[dict[str, Any]]) -> None:
    gateway.enable(MODEL)
    r = _openai(gateway, plugins=plugins)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "FEATURE_NOT_ALLOWED" and body["error"]["type"] == "invalid_request_error"
    assert body["message"].startswith("plugins.0")


def test_the_admin_can_widen_the_policy(gateway: Gateway, simulator: ServerThread) -> None:
    policy = {
        "webSearch": {"engines": ["exa"], "maxResults": 8},
        "pdfEngines": ["mistral-ocr"],
        "plugins": ["web", "file-parser", "moderation"],
    }
    gateway.enable(MODEL, requestPolicy=policy)
    assert _native(gateway, webSearch={"enabled": True, "engine": "exa", "maxResults": 8}).status_code == 200
    assert _last_sent(simulator)["plugins"] == [{"id": "web", "engine": "exa", "max_results": 8}]
    r = _openai(gateway, plugins=[{"id": "file-parser"}, {"id": "moderation"}])
    assert r.status_code == 200, r.text
    assert _last_sent(simulator)["plugins"] == [
        {"id": "file-parser", "pdf": {"engine": "mistral-ocr"}},
        {"id": "moderation"},
    ]


def test_the_admin_can_turn_web_search_off_or_narrow_it(gateway: Gateway, simulator: ServerThread) -> None:
    cid = gateway.enable(MODEL, requestPolicy={"webSearch": {"enabled": False}})
    r = _native(gateway, webSearch={"enabled": True})
    assert r.status_code == 400 and r.json()["message"] == "webSearch: web search is not enabled for this model"
    r = gateway.client.patch(
        f"/api/ai/configurations/{cid}",
        json={"requestPolicy": {"webSearch": {"maxResults": 2}}},
        headers=gateway.admin(),
    )
    assert r.status_code == 200, r.text
    assert _openai(gateway, plugins=[{"id": "web"}]).status_code == 200
    assert _last_sent(simulator)["plugins"] == [{"id": "web", "max_results": 2}]


def test_reasoning_budgets_are_clamped_to_the_call(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, requestPolicy={"maxTokens": 256})
    r = _openai(gateway, reasoning={"max_tokens": 1_000_000, "effort": "high"})
    assert r.status_code == 200, r.text
    sent = _last_sent(simulator)
    assert sent["max_tokens"] == 256 and sent["reasoning"] == {"max_tokens": 256, "effort": "high"}
    r = _openai(gateway, max_completion_tokens=100, reasoning={"max_tokens": 5000})
    assert r.status_code == 200, r.text
    assert _last_sent(simulator)["reasoning"] == {"max_tokens": 100}
    r = _openai(gateway, max_completion_tokens=1000)
    assert r.status_code == 400 and r.json()["error"]["code"] == "TOKEN_LIMIT_EXCEEDED", r.text
    r = _native(gateway, maxTokens=257)
    assert r.status_code == 400 and r.json()["error"] == "TOKEN_LIMIT_EXCEEDED", r.text
    r = _openai(gateway, reasoning={"max_tokens": -1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "FEATURE_NOT_ALLOWED", r.text


def test_the_openai_user_field_is_passed_on_only_when_configured(gateway: Gateway, simulator: ServerThread) -> None:
    cid = gateway.enable(MODEL)
    assert _openai(gateway, user="end-user-1").status_code == 200
    assert "user" not in _last_sent(simulator)
    gateway.client.patch(
        f"/api/ai/configurations/{cid}", json={"requestPolicy": {"forwardUser": True}}, headers=gateway.admin()
    )
    assert _openai(gateway, user="end-user-1").status_code == 200
    assert _last_sent(simulator)["user"] == "end-user-1"


def test_the_configuration_routes_accept_list_and_validate_the_policy(gateway: Gateway) -> None:
    c, admin = gateway.client, gateway.admin()
    cid = gateway.enable(MODEL, requestPolicy={"systemMessages": False, "maxTokens": 512})
    listed = c.get("/api/ai/configurations", headers=admin).json()[0]["requestPolicy"]
    assert listed == {
        "systemMessages": False,
        "maxTokens": 512,
        "webSearch": {"enabled": True, "engines": [], "maxResults": 5},
        "pdfEngines": ["pdf-text"],
        "plugins": ["web", "file-parser"],
        "forwardUser": False,
    }
    gateway.enable(MODEL, systemPrompt="x")  # an upsert without the field keeps the policy
    assert c.get("/api/ai/configurations", headers=admin).json()[0]["requestPolicy"]["maxTokens"] == 512
    for bad in (
        {"webSearch": {"engines": ["bing"]}},
        {"webSearch": {"maxResults": 11}},
        {"pdfEngines": ["ocr-deluxe"]},
        {"plugins": ["auto-router"]},
        {"systemMesages": False},  # misspelt: refused, not silently the default
        {"maxTokens": 0},
    ):
        r = c.patch(f"/api/ai/configurations/{cid}", json={"requestPolicy": bad}, headers=admin)
        assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT", (bad, r.text)
        assert r.json()["message"].startswith("Validation error: requestPolicy.")
    r = c.patch(f"/api/ai/configurations/{cid}", json={"requestPolicy": None}, headers=admin)
    assert r.status_code == 200
    assert c.get("/api/ai/configurations", headers=admin).json()[0]["requestPolicy"]["systemMessages"] is True


def test_an_embeddings_model_is_not_a_chat_model(gateway: Gateway) -> None:
    gateway.enable("openai/text-embedding-3-small", inputModality=["text"], outputModality=["embeddings"])
    for path in (NATIVE, OPENAI):
        r = gateway.client.post(
            path, json={"model": "openai/text-embedding-3-small", "messages": ASK}, headers=gateway.user()
        )
        assert r.status_code == 400, r.text
        body = r.json()
        code = body["error"]["code"] if path == OPENAI else body["error"]
        assert code == "AI_INVALID_MODEL" and "not for chat" in body["message"]


def test_a_chat_model_serves_neither_images_nor_embeddings(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    r = gateway.client.post(
        "/api/ai/image/generation", json={"model": MODEL, "prompt": "a fox"}, headers=gateway.user()
    )
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL", r.text
    for path in ("/api/ai/embeddings", "/api/ai/v1/embeddings"):
        r = gateway.client.post(path, json={"model": MODEL, "input": "hi"}, headers=gateway.user())
        assert r.status_code == 400 and "not for embeddings" in r.json()["message"], r.text


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
        [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}],
    ],
)
def test_a_text_only_configuration_refuses_image_and_audio_parts(gateway: Gateway, content: list[Any]) -> None:
    gateway.enable(MODEL, inputModality=["text"])
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, *content]}]
    r = gateway.client.post(NATIVE, json={"model": MODEL, "messages": msgs}, headers=gateway.user())
    assert r.status_code == 400 and r.json()["error"] == "FEATURE_NOT_ALLOWED", r.text
    assert r.json()["message"].startswith("messages.0.content: ")
    legacy = [{"role": "user", "content": "what", "images": [{"url": "https://example.com/a.png"}]}]
    r = gateway.client.post(OPENAI, json={"model": MODEL, "messages": legacy}, headers=gateway.user())
    assert r.status_code == 400 and r.json()["error"]["code"] == "FEATURE_NOT_ALLOWED", r.text
