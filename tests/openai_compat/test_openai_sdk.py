"""The official `openai` Python SDK against `/api/ai/v1` (docs/api.md#openai-compatible-dialect), simulator upstream.

Each test drives the SDK as an application would, then checks what went upstream
(`/_sim/requests`) and what was recorded (`ai.usage`), so the OpenAI door is shown to share
the native flow's system prompt, gating, limits and usage.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def client(gw: Gateway, token: str | None = None, **kw: Any) -> OpenAI:
    return OpenAI(base_url=gw.url + "/api/ai/v1", api_key=token or gw.token(), max_retries=0, timeout=20, **kw)


def test_plain_chat_prepends_the_system_prompt_and_records_usage(
    gateway: Gateway, simulator: ServerThread, sql: SQL
) -> None:
    config_id = gateway.enable(MODEL, systemPrompt="You are terse.", requestPolicy={"forwardUser": True})
    res = client(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hi"}],
        temperature=0.3,
        max_completion_tokens=64,
        seed=7,
        stop=["\n\n"],
        presence_penalty=0.5,
        user="end-user-9",
    )
    assert res.object == "chat.completion"
    assert res.id.startswith("gen-")
    assert res.model == MODEL
    assert res.choices[0].message.role == "assistant"
    assert res.choices[0].message.content and "Say hi" in res.choices[0].message.content
    assert res.choices[0].finish_reason == "stop"
    assert res.usage is not None and res.usage.total_tokens == res.usage.prompt_tokens + res.usage.completion_tokens

    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["messages"][1] == {"role": "user", "content": "Say hi"}
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.3
    assert sent["seed"] == 7 and sent["stop"] == ["\n\n"] and sent["presence_penalty"] == 0.5
    assert sent["user"] == "end-user-9"

    rows = wait_usage(sql, 1)
    assert len(rows) == 1
    row = rows[0]
    assert str(row["config_id"]) == config_id and row["user_id"] == "user-1" and row["kind"] == "chat"
    assert row["input_tokens"] == res.usage.prompt_tokens and row["output_tokens"] == res.usage.completion_tokens


def test_developer_messages_go_upstream_as_system(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    client(gateway).chat.completions.create(
        model=MODEL, messages=[{"role": "developer", "content": "Rules."}, {"role": "user", "content": "Hi"}]
    )
    assert sim_chats(simulator.url)[-1]["body"]["messages"][0] == {"role": "system", "content": "Rules."}


def test_streaming_chunks_in_order_match_the_plain_answer(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="Be brief.")
    oa = client(gateway)
    messages: Any = [{"role": "user", "content": "Count to five"}]
    plain = oa.chat.completions.create(model=MODEL, messages=messages)
    chunks = list(
        oa.chat.completions.create(model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True})
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 5  # one frame per upstream content chunk, not one buffered blob
    assert "".join(texts) == plain.choices[0].message.content
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == plain.usage.total_tokens if plain.usage else False
    assert all(c.usage is None for c in chunks[:-1])
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["stream"] is True and sent["messages"][0]["content"] == "Be brief."
    rows = wait_usage(sql, 2)
    assert len(rows) == 2 and rows[1]["output_tokens"] == last.usage.completion_tokens


def test_stream_without_include_usage_has_no_usage_chunk_but_is_recorded(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    chunks = list(
        client(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True
        )
    )
    assert chunks and all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)
    rows = wait_usage(sql, 1)
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0


def test_stream_frames_on_the_wire(gateway: Gateway) -> None:
    """Raw SSE: `data: {chunk}` frames, `[DONE]` last, text/event-stream."""
    gateway.enable(MODEL)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with gateway.client.stream("POST", "/api/ai/v1/chat/completions", json=body, headers=gateway.user()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith('data: {"id":') for line in lines[:-1])


def test_tool_calls_plain_and_streamed(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    res = oa.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, tool_choice="auto", parallel_tool_calls=True
    )
    calls = res.choices[0].message.tool_calls
    assert res.choices[0].finish_reason == "tool_calls"
    assert calls and calls[0].type == "function" and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == '{"city":"Paris"}'
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True

    # Two parallel calls, streamed: fragments arrive by index and the SDK's own accumulation works.
    stream = oa.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, stream=True, extra_headers={"x-sim-tool-calls": "2"}
    )
    by_index: dict[int, dict[str, str]] = {}
    fragments = 0
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or ():
                fragments += 1
                entry = by_index.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += tc.id or ""
                entry["name"] += (tc.function.name or "") if tc.function else ""
                entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls"
    assert sorted(by_index) == [0, 1] and fragments > 2
    assert all(e["id"].startswith("call_") and e["name"] == "get_weather" for e in by_index.values())
    assert all(e["arguments"] == '{"city":"Paris"}' for e in by_index.values())

    # The tool result goes back as OpenAI messages.
    call = calls[0]
    follow = oa.chat.completions.create(
        model=MODEL,
        messages=[
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [cast(Any, call.model_dump())]},
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
        ],
        tools=TOOLS,
    )
    assert follow.choices[0].message.content and "tool result" in follow.choices[0].message.content
    assert sim_chats(simulator.url)[-1]["body"]["messages"][-1]["tool_call_id"] == call.id


def test_embeddings_float_and_base64(gateway: Gateway) -> None:
    gateway.enable(EMBED, inputModality=["text"], outputModality=["embeddings"])
    oa = client(gateway)
    floats = oa.embeddings.create(model=EMBED, input=["hello", "world"], encoding_format="float", dimensions=8)
    assert floats.object == "list" and floats.model == EMBED
    assert [d.index for d in floats.data] == [0, 1]
    assert all(len(d.embedding) == 8 and isinstance(d.embedding[0], float) for d in floats.data)
    assert floats.usage.prompt_tokens > 0 and floats.usage.total_tokens >= floats.usage.prompt_tokens
    # The SDK's default asks for base64 and decodes it itself; the vectors must be the same.
    decoded = oa.embeddings.create(model=EMBED, input=["hello", "world"], dimensions=8)
    for got, want in zip(decoded.data, floats.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, rel=1e-6)
    raw = httpx.post(
        gateway.url + "/api/ai/v1/embeddings",
        json={"model": EMBED, "input": "hello", "encoding_format": "base64", "dimensions": 8},
        headers=gateway.user(),
    ).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    assert set(raw["usage"]) == {"prompt_tokens", "total_tokens"} and raw["model"] == EMBED


def test_models_lists_only_enabled_configurations(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    cid = gateway.enable("anthropic/claude-3.5-haiku")
    gateway.enable(EMBED, outputModality=["embeddings"])
    gateway.client.delete(f"/api/ai/configurations/{cid}", headers=gateway.admin())
    models = client(gateway, gateway.token(role="anon", sub="anon-1")).models.list()
    ids = [m.id for m in models.data]
    assert ids == [MODEL, EMBED]
    first = models.data[0]
    assert first.object == "model" and first.owned_by == "openai" and first.created > 1_700_000_000


def test_errors_raise_the_sdk_exception_classes(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1)
    gw.enable(MODEL)
    messages: Any = [{"role": "user", "content": "hi"}]

    with pytest.raises(openai.AuthenticationError) as auth:
        client(gw, "not-a-jwt").chat.completions.create(model=MODEL, messages=messages)
    assert auth.value.status_code == 401 and auth.value.code == "AUTH_UNAUTHORIZED"
    assert "Invalid token" in auth.value.message
    expired = gw.token(exp=int(time.time()) - 3600)
    with pytest.raises(openai.AuthenticationError):
        client(gw, expired).models.list()

    with pytest.raises(openai.BadRequestError) as bad_model:
        client(gw).chat.completions.create(model="openai/gpt-4o", messages=messages)
    assert bad_model.value.code == "AI_INVALID_MODEL" and bad_model.value.type == "invalid_request_error"
    assert "is not enabled" in bad_model.value.message
    body = bad_model.value.response.json()
    assert body["statusCode"] == 400 and body["message"] == body["error"]["message"]

    with pytest.raises(openai.BadRequestError) as n2:
        client(gw).chat.completions.create(model=MODEL, messages=messages, n=2)
    assert n2.value.code == "INVALID_INPUT" and "n:" in n2.value.message

    with pytest.raises(openai.BadRequestError) as invalid:
        client(gw).chat.completions.create(model=MODEL, messages=[{"role": "wizard", "content": "x"}])  # type: ignore[misc,list-item]
    assert "Validation error: messages.0.role: " in invalid.value.message

    with pytest.raises(openai.RateLimitError) as upstream_429:
        client(gw).chat.completions.create(
            model=MODEL,
            messages=messages,
            extra_headers={"x-sim-fail-status": "429", "x-sim-retry-after": "0"},
        )
    assert upstream_429.value.code == "RATE_LIMITED" and upstream_429.value.type == "rate_limit_error"

    # The gateway's own per-user limit: one request per minute for this user.
    sql(
        "INSERT INTO ai.limit_overrides (user_id, body) VALUES ('limited', %s::jsonb)",
        ('{"requestsPerMinute": 1}',),
    )
    limited = client(gw, gw.token(sub="limited"))
    limited.chat.completions.create(model=MODEL, messages=messages)
    with pytest.raises(openai.RateLimitError) as own_429:
        limited.chat.completions.create(model=MODEL, messages=messages)
    assert own_429.value.code == "RATE_LIMITED"
    assert own_429.value.response.headers.get("retry-after")


def test_no_token_is_401_in_both_error_shapes(gateway: Gateway) -> None:
    r = httpx.post(gateway.url + "/api/ai/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == {
        "message": "No token provided",
        "type": "authentication_error",
        "code": "AUTH_INVALID_CREDENTIALS",
        "param": None,
    }
    assert body["statusCode"] == 401 and body["message"] == "No token provided" and "nextActions" in body
    r = httpx.post(
        gateway.url + "/api/ai/v1/chat/completions",
        content=b"{nope",
        headers={**gateway.user(), "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT"


def test_mid_stream_failure_raises_in_the_sdk_and_is_recorded(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    stream = client(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        extra_headers={"x-sim-fail-after-chunks": "2"},
    )
    got: list[str] = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert len(got) == 2
    assert "Failed to stream response" in err.value.message
    rows = wait_usage(sql, 1)
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0


def test_stream_is_relayed_as_it_arrives(gateway: Gateway) -> None:
    """With 300 ms between upstream chunks the first token reaches the SDK long before the last."""
    gateway.enable(MODEL)
    started = time.monotonic()
    stream = client(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Slowly"}],
        stream=True,
        extra_headers={"x-sim-chunk-delay-ms": "300", "x-sim-chunks": "4"},
    )
    arrivals = [time.monotonic() - started for c in stream if c.choices and c.choices[0].delta.content]
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] > 0.8  # spread out as generated, not delivered in one burst


def test_client_disconnect_stops_upstream_and_records_tokens_so_far(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    stream = client(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A long story"}],
        stream=True,
        extra_headers={"x-sim-chunk-delay-ms": "200", "x-sim-chunks": "50"},
    )
    got = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got += 1
            if got == 2:
                break
    stream.close()
    rows = wait_usage(sql, 1)
    assert len(rows) == 1
    assert 0 < rows[0]["output_tokens"] < 50  # estimated from what was relayed, not the full answer


def test_openrouter_extras_and_response_format_pass_through(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    res = oa.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "News about Paris"}],
        extra_body={"plugins": [{"id": "web", "max_results": 2}], "reasoning": {"effort": "low"}},
    )
    message = res.choices[0].message
    assert message.annotations and message.annotations[0].type == "url_citation"
    assert message.annotations[0].url_citation.url.startswith("http")
    assert (message.model_extra or {}).get("reasoning")
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["plugins"] == [{"id": "web", "max_results": 2}] and sent["reasoning"] == {"effort": "low"}

    schema: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    res = oa.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a city"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        max_tokens=50,
        max_completion_tokens=40,
    )
    assert isinstance(json.loads(res.choices[0].message.content or ""), dict)
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["response_format"]["type"] == "json_schema" and sent["max_tokens"] == 40

    streamed = list(
        oa.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "News"}],
            stream=True,
            extra_body={"plugins": [{"id": "web"}]},
        )
    )
    notes = [n for c in streamed if c.choices for n in (c.choices[0].delta.model_extra or {}).get("annotations") or ()]
    assert notes and notes[0]["type"] == "url_citation"


def test_anon_callers_limits_headers_and_token_cap(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(max_completion_tokens=100)
    gw.enable(MODEL)
    sql(
        "INSERT INTO ai.limit_settings (id, body) VALUES ('project', %s::jsonb)",
        ('{"perUser": {"requestsPerMinute": 50}}',),
    )
    anon = client(gw, gw.token(role="anon", sub="anon-key"))
    raw = anon.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert raw.http_response.status_code == 200
    assert raw.headers.get("x-ratelimit-limit")
    assert raw.parse().choices[0].message.content
    with pytest.raises(openai.BadRequestError) as cap:
        anon.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=101)
    assert cap.value.code == "TOKEN_LIMIT_EXCEEDED"
