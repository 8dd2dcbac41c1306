"""The official `anthropic` Python SDK against `/api/ai/v1/messages` (docs/api.md#anthropic-messages).

Simulator upstream. Each test drives the SDK as an application would (base URL: `/api/ai`), then checks
what went upstream (`/_sim/requests`) and what was recorded (`ai.usage`), so the Anthropic door is
shown to share the chat flow's system prompt, gating, limits and usage.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import anthropic
import httpx
import pytest
from anthropic import Anthropic

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats, wait_usage

MODEL = "anthropic/claude-3.5-haiku"
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def client(gw: Gateway, token: str | None = None, **kw: Any) -> Anthropic:
    return Anthropic(base_url=gw.url + "/api/ai", api_key=token or gw.token(), max_retries=0, timeout=20, **kw)


def user_says(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_plain_message_system_prompts_in_order_and_usage(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    config_id = gateway.enable(MODEL, systemPrompt="You are terse.")
    res = client(gateway).messages.create(
        model=MODEL,
        max_tokens=64,
        system="Answer in English.",
        messages=user_says("Say hi"),
        stop_sequences=["\n\n"],
        # Sampling fields this SDK release no longer names; older ones (and other clients) send them.
        extra_body={"temperature": 0.3, "top_p": 0.9, "top_k": 5},
        metadata={"user_id": "end-user-9"},
    )
    assert res.type == "message" and res.role == "assistant" and res.model == MODEL
    assert res.id.startswith("msg_")
    assert len(res.content) == 1 and res.content[0].type == "text" and "Say hi" in res.content[0].text
    assert res.stop_reason == "end_turn" and res.stop_sequence is None
    assert res.usage.input_tokens > 0 and res.usage.output_tokens > 0

    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},  # the admin's first, then the caller's
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Say hi"},
    ]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.3 and sent["top_p"] == 0.9
    assert sent["top_k"] == 5 and sent["stop"] == ["\n\n"]
    assert "metadata" not in sent and "user" not in sent

    rows = wait_usage(sql, 1)
    assert len(rows) == 1
    row = rows[0]
    assert str(row["config_id"]) == config_id and row["user_id"] == "user-1" and row["kind"] == "chat"
    assert row["input_tokens"] == res.usage.input_tokens and row["output_tokens"] == res.usage.output_tokens
    assert res.id == f"msg_{row['request_id']}" and res._request_id == row["request_id"]


def test_system_as_text_blocks_is_one_system_message(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    client(gateway).messages.create(
        model=MODEL,
        max_tokens=32,
        system=[{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
        messages=user_says("Hi"),
    )
    sent = sim_chats(simulator.url)[-1]["body"]["messages"]
    assert sent == [{"role": "system", "content": "Rule one.\n\nRule two."}, {"role": "user", "content": "Hi"}]


def test_stream_text_and_final_message_match_the_plain_answer(
    gateway: Gateway, simulator: ServerThread, sql: SQL
) -> None:
    gateway.enable(MODEL, systemPrompt="Be brief.")
    ac = client(gateway)
    plain = ac.messages.create(model=MODEL, max_tokens=100, messages=user_says("Count to five"))
    with ac.messages.stream(model=MODEL, max_tokens=100, messages=user_says("Count to five")) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) >= 5  # one delta per upstream chunk, not one buffered blob
    assert plain.content[0].type == "text" and "".join(texts) == plain.content[0].text
    assert final.content[0].type == "text" and final.content[0].text == plain.content[0].text
    assert final.stop_reason == "end_turn" and final.id.startswith("msg_")
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert sim_chats(simulator.url)[-1]["body"]["stream"] is True
    rows = wait_usage(sql, 2)
    assert len(rows) == 2 and rows[1]["output_tokens"] == final.usage.output_tokens


def test_stream_events_on_the_wire(gateway: Gateway) -> None:
    """Raw SSE: every frame named by an `event:` line, in Anthropic's order."""
    gateway.enable(MODEL)
    body = {"model": MODEL, "max_tokens": 50, "messages": user_says("Hi"), "stream": True}
    with gateway.client.stream("POST", "/api/ai/v1/messages", json=body, headers=gateway.user()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["request-id"] == r.headers["x-request-id"]
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("event: ") for line in lines[::2])
    assert all(line.startswith('data: {"type":') for line in lines[1::2])
    names = [line[len("event: ") :] for line in lines[::2]]
    # A ping right after the first block opens, as Anthropic sends it; each upstream keep-alive adds one.
    assert names[names.index("content_block_start") + 1] == "ping"
    names = [n for n in names if n != "ping"]
    assert names[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}


def test_tools_round_trip(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    ac = client(gateway)
    question = user_says("Weather in Paris?")
    res = ac.messages.create(model=MODEL, max_tokens=100, messages=question, tools=TOOLS, tool_choice={"type": "auto"})
    assert res.stop_reason == "tool_use"
    calls = [b for b in res.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"}
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": TOOLS[0]["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "auto" and "parallel_tool_calls" not in sent

    # The tool result goes back as Anthropic blocks and reaches the upstream as OpenAI messages.
    call = calls[0]
    follow = ac.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=TOOLS,
        messages=[
            *question,
            {"role": "assistant", "content": res.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C"}]},
        ],
    )
    assert follow.stop_reason == "end_turn"
    assert follow.content[0].type == "text" and "tool result" in follow.content[0].text
    sent_messages = sim_chats(simulator.url)[-1]["body"]["messages"]
    assert sent_messages[1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
    ]

    # A user turn with results and more text: the results first (as OpenAI orders them), then the
    # text; an error result says so.
    ac.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=TOOLS,
        messages=[
            *question,
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, *res.content]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here:"},
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": [{"type": "text", "text": "timeout"}],
                        "is_error": True,
                    },
                ],
            },
        ],
    )
    sent_messages = sim_chats(simulator.url)[-1]["body"]["messages"]
    assert sent_messages[1]["content"] == "Checking." and sent_messages[1]["tool_calls"][0]["id"] == call.id
    assert sent_messages[2:] == [
        {"role": "tool", "tool_call_id": call.id, "content": "Error: timeout"},
        {"role": "user", "content": [{"type": "text", "text": "Here:"}]},
    ]


def test_streamed_tool_calls_and_tool_choice_forms(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    ac = client(gateway)
    question = user_says("Weather in Paris?")
    with ac.messages.stream(
        model=MODEL, max_tokens=100, messages=question, tools=TOOLS, extra_headers={"x-sim-tool-calls": "2"}
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert len(calls) == 2 and len({c.id for c in calls}) == 2
    assert all(c.name == "get_weather" and c.input == {"city": "Paris"} for c in calls)

    forms: list[tuple[Any, Any, Any]] = [
        ({"type": "any"}, "required", None),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "none"}, "none", None),
    ]
    for choice, upstream_choice, parallel in forms:
        ac.messages.create(model=MODEL, max_tokens=50, messages=question, tools=TOOLS, tool_choice=choice)
        sent = sim_chats(simulator.url)[-1]["body"]
        assert sent["tool_choice"] == upstream_choice
        assert sent.get("parallel_tool_calls") == parallel


def test_image_blocks_go_upstream_as_image_parts(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    res = client(gateway).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "text", "text": "What are these?"},
                ],
            }
        ],
    )
    assert res.content[0].type == "text" and "I saw 2 images" in res.content[0].text
    parts = sim_chats(simulator.url)[-1]["body"]["messages"][0]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What are these?"},
    ]


def test_usage_row_equals_the_chat_completions_row(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="Admin rules.")
    client(gateway).messages.create(
        model=MODEL,
        max_tokens=80,
        system="Caller rules.",
        messages=user_says("Same prompt"),
        extra_body={"temperature": 0.5},
    )
    r = gateway.client.post(
        "/api/ai/v1/chat/completions",
        json={
            "model": MODEL,
            "max_tokens": 80,
            "temperature": 0.5,
            "messages": [{"role": "system", "content": "Caller rules."}, {"role": "user", "content": "Same prompt"}],
        },
        headers=gateway.user(),
    )
    assert r.status_code == 200
    via_anthropic, via_openai = (c["body"] for c in sim_chats(simulator.url)[-2:])
    assert via_anthropic == via_openai  # the same upstream request from either door
    rows = wait_usage(sql, 2)
    assert len(rows) == 2
    keys = ("model_id", "kind", "config_id", "user_id", "input_tokens", "output_tokens", "cost_usd", "key_source")
    assert {k: rows[0][k] for k in keys} == {k: rows[1][k] for k in keys}


def test_x_api_key_carries_a_user_jwt_and_bearer_wins(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    body = {"model": MODEL, "max_tokens": 20, "messages": user_says("hi")}
    version = {"anthropic-version": "2023-06-01"}
    r = gateway.client.post("/api/ai/v1/messages", json=body, headers={**version, "x-api-key": gateway.token()})
    assert r.status_code == 200 and r.json()["type"] == "message"
    # Both sent: the Bearer credential decides, and the other header is not read.
    both = {**version, **gateway.user(sub="user-2"), "x-api-key": "not-a-jwt"}
    assert gateway.client.post("/api/ai/v1/messages", json=body, headers=both).status_code == 200
    # The admin key works in x-api-key as on every route.
    r = gateway.client.post("/api/ai/v1/messages", json=body, headers={**version, "x-api-key": gateway.admin_key})
    assert r.status_code == 200
    rows = wait_usage(sql, 3)
    assert [row["user_id"] for row in rows] == ["user-1", "user-2", None]

    bad = gateway.client.post("/api/ai/v1/messages", json=body, headers={**version, "x-api-key": "not-a-jwt"})
    assert bad.status_code == 401
    assert bad.json()["type"] == "error" and bad.json()["error"]["type"] == "authentication_error"
    # Elsewhere x-api-key stays the admin key only.
    chat = gateway.client.post(
        "/api/ai/v1/chat/completions",
        json={"model": MODEL, "messages": user_says("hi")},
        headers={"x-api-key": gateway.token()},
    )
    assert chat.status_code == 401 and chat.json()["error"]["code"] == "AUTH_INVALID_API_KEY"


def test_errors_raise_the_sdk_exception_classes(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1)
    gw.enable(MODEL)
    ac = client(gw)

    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(gw, "not-a-jwt").messages.create(model=MODEL, max_tokens=10, messages=user_says("hi"))
    assert auth.value.status_code == 401
    assert auth.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid token", "code": "AUTH_UNAUTHORIZED"},
        "message": "Invalid token",
        "statusCode": 401,
    }

    with pytest.raises(anthropic.BadRequestError) as missing:
        ac.post("/v1/messages", body={"model": MODEL, "messages": user_says("hi")}, cast_to=anthropic.types.Message)
    error = missing.value.response.json()["error"]
    assert error["type"] == "invalid_request_error" and "max_tokens: Field required" in error["message"]

    with pytest.raises(anthropic.BadRequestError) as bad_block:
        ac.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=cast(Any, [{"role": "user", "content": [{"type": "video", "url": "x"}]}]),
        )
    assert "messages.0.content" in bad_block.value.response.json()["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        ac.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=user_says("hi"),
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert "tools.0" in server_tool.value.response.json()["error"]["message"]

    with pytest.raises(anthropic.NotFoundError) as unknown_model:
        ac.messages.create(model="anthropic/claude-opus-4", max_tokens=10, messages=user_says("hi"))
    error = unknown_model.value.response.json()["error"]
    assert error["type"] == "not_found_error" and error["code"] == "AI_INVALID_MODEL"
    assert "is not enabled" in error["message"]

    with pytest.raises(anthropic.RateLimitError) as upstream_429:
        ac.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=user_says("hi"),
            extra_headers={"x-sim-fail-status": "429", "x-sim-retry-after": "0"},
        )
    assert upstream_429.value.response.json()["error"]["type"] == "rate_limit_error"

    # The gateway's own per-user limit: one request per minute for this user.
    sql(
        "INSERT INTO ai.limit_overrides (user_id, body) VALUES ('limited', %s::jsonb)",
        ('{"requestsPerMinute": 1}',),
    )
    limited = client(gw, gw.token(sub="limited"))
    limited.messages.create(model=MODEL, max_tokens=10, messages=user_says("hi"))
    with pytest.raises(anthropic.RateLimitError) as own_429:
        limited.messages.create(model=MODEL, max_tokens=10, messages=user_says("hi"))
    assert own_429.value.response.json()["error"]["code"] == "RATE_LIMITED"
    assert own_429.value.response.headers.get("retry-after")

    # Paths and methods the router does not serve answer in the same shape.
    with pytest.raises(anthropic.NotFoundError) as count_tokens:
        ac.messages.count_tokens(model=MODEL, messages=user_says("hi"))
    assert count_tokens.value.response.json()["error"]["type"] == "not_found_error"
    batches = gw.client.post("/api/ai/v1/messages/batches", json={"requests": []}, headers=gw.user())
    assert batches.status_code == 404 and batches.json()["type"] == "error"
    r = gw.client.get("/api/ai/v1/messages", headers=gw.user())
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"


def test_forbidden_and_too_large(make_gateway: MakeGateway) -> None:
    gw = make_gateway(allow_anon=False, max_body_bytes=4096)
    gw.enable(MODEL)
    with pytest.raises(anthropic.PermissionDeniedError) as anon:
        client(gw, gw.token(role="anon", sub="anon-1")).messages.create(
            model=MODEL, max_tokens=10, messages=user_says("hi")
        )
    assert anon.value.response.json()["error"]["type"] == "permission_error"
    with pytest.raises(anthropic.APIStatusError) as big:
        client(gw).messages.create(model=MODEL, max_tokens=10, messages=user_says("x" * 5000))
    assert big.value.status_code == 413
    assert big.value.response.json()["error"] == {
        "type": "request_too_large",
        "message": "Request body is larger than the 0.00390625 MiB limit",
        "code": "PAYLOAD_TOO_LARGE",
    }


def test_mid_stream_failure_raises_in_the_sdk_and_is_recorded(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    got: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        with client(gateway).messages.stream(
            model=MODEL,
            max_tokens=100,
            messages=user_says("Tell me a story"),
            extra_headers={"x-sim-fail-after-chunks": "2"},
        ) as stream:
            for text in stream.text_stream:
                got.append(text)
    assert len(got) == 2
    assert isinstance(err.value.body, dict)
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "api_error"
    assert "Failed to stream response" in err.value.body["error"]["message"]
    rows = wait_usage(sql, 1)
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0


def test_no_credentials_is_401_in_anthropic_shape(gateway: Gateway) -> None:
    r = httpx.post(gateway.url + "/api/ai/v1/messages", json={"model": MODEL, "max_tokens": 5, "messages": []})
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "authentication_error",
        "message": "No token provided",
        "code": "AUTH_INVALID_CREDENTIALS",
    }
    r = httpx.post(
        gateway.url + "/api/ai/v1/messages",
        content=b"{nope",
        headers={**gateway.user(), "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "hi \\ud800 there"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]},
        {"messages": user_says("x"), "top_k": 2**64},
        {"messages": user_says("x"), "tools": [{"name": "f", "input_schema": "@NESTED@"}]},
    ],
)
def test_unsendable_bodies_are_400_before_any_limit(gateway: Gateway, body: dict[str, Any]) -> None:
    """What the JSON parser accepts but nothing downstream can carry: a 400 in Anthropic's shape."""
    gateway.enable(MODEL)
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        nested = {"type": "object", "properties": {"x": nested}}
    raw = json.dumps({"model": MODEL, "max_tokens": 10, **body}).replace('"@NESTED@"', json.dumps(nested))
    r = gateway.client.post(
        "/api/ai/v1/messages",
        content=raw.replace("\\\\ud800", "\\ud800").encode(),
        headers={**gateway.user(), "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["code"] == "INVALID_INPUT" and answer["message"].startswith("Validation error: ")
