"""Chat completions over real HTTP against the simulator: shapes, gating, prompts, usage (docs/api.md#chat-native)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats, sse_events, wait_usage

MODEL = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "Say hello to the gateway"}]


def _usage_row(sql: SQL) -> dict[str, Any]:
    rows = sql("SELECT * FROM ai.usage")
    assert len(rows) == 1, rows
    return rows[0]


def test_plain_chat_shape_prompt_and_usage(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    config_id = gateway.enable(MODEL, systemPrompt="You are the admin's assistant.")
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={
            "model": MODEL,
            "messages": [{"role": "system", "content": "caller system"}, *HELLO],
            "maxTokens": 100,
            "temperature": 0.2,
            "topP": 0.9,
            "systemPrompt": "ignored",
        },
        headers=gateway.user(sub="alice"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    sent = sim_chats(simulator.url)[-1]
    upstream = sent["body"]
    assert upstream["messages"][0] == {"role": "system", "content": "You are the admin's assistant."}
    assert upstream["messages"][1] == {"role": "system", "content": "caller system"}
    assert upstream["max_tokens"] == 100 and upstream["temperature"] == 0.2 and upstream["top_p"] == 0.9
    assert "systemPrompt" not in upstream
    assert sent["headers"]["authorization"] == "Bearer sk-or-v1-env-test-key"
    assert sent["headers"]["http-referer"] and sent["headers"]["x-title"]

    reported = sent["usage"]
    expected_usage = {
        "promptTokens": reported["prompt_tokens"],
        "completionTokens": reported["completion_tokens"],
        "totalTokens": reported["total_tokens"],
    }
    assert body["text"].startswith("Simulated reply")
    assert body["response"] == body["text"]
    assert body["metadata"] == {"model": MODEL, "usage": expected_usage}
    assert body["model"] == MODEL and body["usage"] == expected_usage
    assert "tool_calls" not in body and "annotations" not in body

    row = wait_usage(sql)[0]
    assert row["config_id"] is not None and str(row["config_id"]) == config_id
    assert (row["input_tokens"], row["output_tokens"]) == (reported["prompt_tokens"], reported["completion_tokens"])
    assert float(row["cost_usd"]) == pytest.approx(reported["cost"])
    assert row["user_id"] == "alice" and row["key_source"] == "env" and row["kind"] == "chat"
    assert row["model_id"] == MODEL and row["latency_ms"] >= 0


def test_defaults_sent_upstream(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    r = gateway.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO}, headers=gateway.user())
    assert r.status_code == 200
    upstream = sim_chats(simulator.url)[-1]["body"]
    assert upstream["temperature"] == 0.7 and upstream["max_tokens"] == 4096
    assert "stream" not in upstream and "plugins" not in upstream


def test_model_not_enabled_and_disabled(gateway: Gateway) -> None:
    r = gateway.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO}, headers=gateway.user())
    assert r.status_code == 400
    assert r.json() == {
        "error": "AI_INVALID_MODEL",
        "message": f"Model {MODEL} is not enabled. Please contact your administrator to enable this model.",
        "statusCode": 400,
        "nextActions": "Use a model from the enabled configurations, or ask an admin to enable this one.",
    }
    cid = gateway.enable(MODEL)
    assert (
        gateway.client.post(
            "/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO}, headers=gateway.user()
        ).status_code
        == 200
    )
    gateway.client.delete(f"/api/ai/configurations/{cid}", headers=gateway.admin())
    r = gateway.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO}, headers=gateway.user())
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"


def test_thinking_suffix_needs_its_own_configuration(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable("deepseek/deepseek-r1")
    req = {"model": "deepseek/deepseek-r1", "messages": HELLO, "thinking": True}
    r = gateway.client.post("/api/ai/chat/completion", json=req, headers=gateway.user())
    assert r.status_code == 400
    assert "deepseek/deepseek-r1:thinking is not enabled" in r.json()["message"]
    gateway.enable("deepseek/deepseek-r1:thinking")
    r = gateway.client.post("/api/ai/chat/completion", json=req, headers=gateway.user())
    assert r.status_code == 200, r.text
    assert sim_chats(simulator.url)[-1]["body"]["model"] == "deepseek/deepseek-r1:thinking"
    assert r.json()["metadata"]["model"] == "deepseek/deepseek-r1:thinking"
    assert r.json()["reasoning"]
    assert wait_usage(sql)[0]["model_id"] == "deepseek/deepseek-r1:thinking"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
    },
]


@pytest.mark.parametrize("calls", [1, 2])
def test_tool_calls_plain(gateway: Gateway, simulator: ServerThread, calls: int) -> None:
    gateway.enable(MODEL)
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "tools": TOOLS, "toolChoice": "auto", "parallelToolCalls": True},
        headers={**gateway.user(), "x-sim-tool-calls": str(calls)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    upstream = sim_chats(simulator.url)[-1]["body"]
    assert upstream["tools"] == TOOLS and upstream["tool_choice"] == "auto" and upstream["parallel_tool_calls"]
    assert len(body["tool_calls"]) == calls
    names = [c["function"]["name"] for c in body["tool_calls"]]
    assert names == ["get_weather", "get_time"][:calls]
    for call in body["tool_calls"]:
        assert call["type"] == "function" and call["id"] and "index" not in call
        assert isinstance(__import__("json").loads(call["function"]["arguments"]), dict)


@pytest.mark.parametrize("calls", [1, 3])
def test_tool_calls_streamed_are_assembled_by_index(gateway: Gateway, calls: int) -> None:
    gateway.enable(MODEL)
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "tools": TOOLS, "stream": True},
        headers={**gateway.user(), "x-sim-tool-calls": str(calls)},
    ) as r:
        assert r.status_code == 200
        events = list(sse_events(r))
    tool_events = [e for e in events if "tool_calls" in e]
    assert len(tool_events) == 1
    assembled = tool_events[0]["tool_calls"]
    assert len(assembled) == calls
    for call in assembled:
        args = __import__("json").loads(call["function"]["arguments"])
        assert args and call["id"].startswith("call_")
    assert events[-1]["done"] is True


def test_tool_round_trip_messages_forwarded(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    messages = [
        *HELLO,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": {"temp": 21}},
    ]
    r = gateway.client.post(
        "/api/ai/chat/completion", json={"model": MODEL, "messages": messages, "tools": TOOLS}, headers=gateway.user()
    )
    assert r.status_code == 200, r.text
    sent = sim_chats(simulator.url)[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp":21}'}
    bad = [*HELLO, {"role": "tool", "content": "x"}]
    r = gateway.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": bad}, headers=gateway.user())
    assert r.status_code == 400
    assert r.json()["message"] == "Tool message is missing required tool_call_id"


def test_web_search_annotations(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, requestPolicy={"webSearch": {"engines": ["exa"]}})
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={
            "model": MODEL,
            "messages": HELLO,
            "webSearch": {"enabled": True, "engine": "exa", "maxResults": 3, "searchPrompt": "Sources:"},
        },
        headers=gateway.user(),
    )
    assert r.status_code == 200, r.text
    assert sim_chats(simulator.url)[-1]["body"]["plugins"] == [
        {"id": "web", "engine": "exa", "max_results": 3, "search_prompt": "Sources:"}
    ]
    notes = r.json()["annotations"]
    assert 1 <= len(notes) <= 3
    for n in notes:
        assert n["type"] == "url_citation" and n["urlCitation"]["url"].startswith("http")
        assert "url_citation" not in n and "start_index" not in n["urlCitation"]


def test_web_search_annotations_streamed(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True, "webSearch": {"enabled": True}},
        headers=gateway.user(),
    ) as r:
        events = list(sse_events(r))
    notes = [e for e in events if "annotations" in e]
    assert len(notes) == 1 and notes[0]["annotations"][0]["type"] == "url_citation"


def test_pdf_plugin_and_vision_input(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, requestPolicy={"pdfEngines": ["pdf-text", "mistral-ocr"]})
    pdf = "data:application/pdf;base64,JVBERi0xLjQK"
    content = [
        {"type": "text", "text": "Summarise the report and describe the picture"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": pdf}},
    ]
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": content}],
            "fileParser": {"enabled": True, "pdf": {"engine": "mistral-ocr"}},
        },
        headers=gateway.user(),
    )
    assert r.status_code == 200, r.text
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["plugins"] == [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]
    assert sent["messages"][0]["content"] == content
    assert "report.pdf" in r.json()["text"] and "1 image" in r.json()["text"]


def test_legacy_message_images_become_content_parts(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    msg = {"role": "user", "content": "What is this?", "images": [{"url": "https://example.com/a.jpg"}]}
    r = gateway.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": [msg]}, headers=gateway.user())
    assert r.status_code == 200
    assert sim_chats(simulator.url)[-1]["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": MODEL, "messages": [{"role": "user"}]}, "messages.0"),
        ({"model": MODEL, "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": MODEL, "messages": HELLO, "maxTokens": 0}, "maxTokens"),
        ({"model": MODEL, "messages": HELLO, "topP": 1.5}, "topP"),
        ({"model": MODEL, "messages": HELLO, "webSearch": {"enabled": True, "maxResults": 20}}, "webSearch.maxResults"),
        ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages.0.content"),
    ],
)
def test_validation_errors_name_the_field(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    r = gateway.client.post("/api/ai/chat/completion", json=body, headers=gateway.user())
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["error"] == "INVALID_INPUT" and payload["statusCode"] == 400
    assert payload["message"].startswith(f"Validation error: {field}"), payload["message"]


def test_max_tokens_cap_and_message_count_cap(make_gateway: MakeGateway) -> None:
    gw = make_gateway(max_completion_tokens=1000, max_messages=3)
    gw.enable(MODEL)
    r = gw.client.post(
        "/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO, "maxTokens": 1001}, headers=gw.user()
    )
    assert r.status_code == 400 and r.json()["error"] == "TOKEN_LIMIT_EXCEEDED"
    r = gw.client.post("/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO * 4}, headers=gw.user())
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
    assert "at most 3 messages" in r.json()["message"]


def test_prompt_over_content_cap_and_over_the_model_context(make_gateway: MakeGateway) -> None:
    gw = make_gateway(max_content_chars=100, models_cache_ttl_s=300.0)
    gw.enable(MODEL)
    r = gw.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x" * 101}]},
        headers=gw.user(),
    )
    assert r.status_code == 400 and r.json()["error"] == "TOKEN_LIMIT_EXCEEDED"

    gw2 = make_gateway(models_cache_ttl_s=300.0)
    gw2.enable("sim/tiny-context")
    assert gw2.client.get("/api/ai/models", headers=gw2.admin()).status_code == 200  # primes the catalog
    long = " ".join(["word"] * 400)
    r = gw2.client.post(
        "/api/ai/chat/completion",
        json={"model": "sim/tiny-context", "messages": [{"role": "user", "content": long}]},
        headers=gw2.user(),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "TOKEN_LIMIT_EXCEEDED" and "context window of 64" in r.json()["message"]


def test_a_caller_chosen_request_id_cannot_suppress_usage_rows(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    for _ in range(2):
        r = gateway.client.post(
            "/api/ai/chat/completion",
            json={"model": MODEL, "messages": HELLO},
            headers={**gateway.user(sub="replayer"), "x-request-id": "same-id"},
        )
        assert r.status_code == 200
    assert len(wait_usage(sql, 2)) == 2
