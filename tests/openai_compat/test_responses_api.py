"""The official `openai` Python SDK's Responses API against `/api/ai/v1/responses`, simulator upstream.

The route is a translation onto the chat flow: each test drives the SDK as an application would,
then checks what went upstream (`/_sim/requests`) and what was recorded (`ai.usage`), so the
Responses door is shown to share chat's system prompt, gating, limits and usage rows.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.support import SQL, Gateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def client(gw: Gateway, token: str | None = None) -> OpenAI:
    return OpenAI(base_url=gw.url + "/api/ai/v1", api_key=token or gw.token(), max_retries=0, timeout=20)


def test_plain_response_with_instructions_and_usage(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    config_id = gateway.enable(MODEL, systemPrompt="You are terse.")
    res = client(gateway).responses.create(
        model=MODEL,
        input="Say hi",
        instructions="Answer in French.",
        max_output_tokens=64,
        temperature=0.3,
        top_p=0.9,
    )
    assert res.object == "response" and res.status == "completed"
    assert res.id.startswith("resp_") and res.model == MODEL
    [item] = res.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert "Say hi" in res.output_text
    assert res.instructions == "Answer in French." and res.max_output_tokens == 64 and res.to_dict()["store"] is False
    assert res.usage is not None
    assert res.usage.total_tokens == res.usage.input_tokens + res.usage.output_tokens
    assert res.usage.input_tokens_details.cached_tokens == 0

    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["messages"][:3] == [
        {"role": "system", "content": "You are terse."},  # the admin's prompt first, always
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Say hi"},
    ]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.3 and sent["top_p"] == 0.9

    [row] = wait_usage(sql, 1)
    assert str(row["config_id"]) == config_id and row["user_id"] == "user-1" and row["kind"] == "chat"
    assert row["input_tokens"] == res.usage.input_tokens and row["output_tokens"] == res.usage.output_tokens


def test_stream_events_in_order_match_the_plain_answer(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="Be brief.")
    oa = client(gateway)
    plain = oa.responses.create(model=MODEL, input="Count to five")
    events: list[Any] = list(oa.responses.create(model=MODEL, input="Count to five", stream=True))
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 5  # one event per upstream content chunk, not one buffered blob
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(deltas) == plain.output_text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == plain.output_text
    completed = events[-1]
    assert completed.type == "response.completed"
    final = completed.response
    assert final.id == events[0].response.id and final.status == "completed"
    assert final.output_text == plain.output_text
    assert final.usage is not None and plain.usage is not None
    assert final.usage.total_tokens == plain.usage.total_tokens
    assert sim_chats(simulator.url)[-1]["body"]["stream"] is True
    rows = wait_usage(sql, 2)
    assert len(rows) == 2 and rows[1]["output_tokens"] == final.usage.output_tokens


def test_stream_helper_collects_the_final_response(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with client(gateway).responses.stream(model=MODEL, input="Hello there") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text and "Hello there" in final.output_text


def test_stream_frames_on_the_wire(gateway: Gateway) -> None:
    """Raw SSE: `event: <type>` then `data: {"type": <type>, ...}`, text/event-stream, no `[DONE]`."""
    gateway.enable(MODEL)
    body = {"model": MODEL, "input": "Hi", "stream": True}
    with gateway.client.stream("POST", "/api/ai/v1/responses", json=body, headers=gateway.user()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line and not line.startswith(":")]  # ": keep-alive"
    pairs = list(zip(lines[::2], lines[1::2], strict=True))
    for event_line, data_line in pairs:
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        assert json.loads(data_line[6:])["type"] == event_line[7:]
    assert pairs[-1][0] == "event: response.completed"


def test_function_call_then_function_call_output(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    res = oa.responses.create(
        model=MODEL, input="Weather in Paris?", tools=TOOLS, tool_choice="auto", parallel_tool_calls=True
    )
    [call] = [o for o in res.output if o.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == '{"city":"Paris"}'
    assert call.call_id.startswith("call_") and call.id and call.status == "completed"
    sent = sim_chats(simulator.url)[-1]["body"]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": TOOLS[0]["parameters"],
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True

    follow = oa.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"},
        ],
        tools=TOOLS,
    )
    assert "tool result" in follow.output_text
    messages = sim_chats(simulator.url)[-1]["body"]["messages"]
    assert messages[-2]["role"] == "assistant"
    assert messages[-2]["tool_calls"] == [
        {"id": call.call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert messages[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "Sunny, 21C"}


def test_function_calls_streamed(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with client(gateway).responses.stream(
        model=MODEL, input="Weather in Paris?", tools=TOOLS, extra_headers={"x-sim-tool-calls": "2"}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [i.type for i in added] == ["function_call", "function_call"]
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1]
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) >= 2
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [d.arguments for d in done] == ['{"city":"Paris"}'] * 2
    calls = [o for o in final.output if o.type == "function_call"]
    assert len(calls) == 2 and len({c.call_id for c in calls}) == 2
    assert all(c.arguments == '{"city":"Paris"}' for c in calls)


class Weather(BaseModel):
    city: str
    temperature_c: int


def test_structured_output_parse(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    res = client(gateway).responses.parse(model=MODEL, input="Weather in Paris as JSON", text_format=Weather)
    assert res.output_parsed == Weather(city="Paris", temperature_c=1)
    fmt = sim_chats(simulator.url)[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Weather"
    assert fmt["json_schema"]["strict"] is True and set(fmt["json_schema"]["schema"]["properties"]) == {
        "city",
        "temperature_c",
    }


def test_usage_row_equals_the_chat_completions_row(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="You are terse.")
    oa = client(gateway)
    oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Same prompt"}])
    oa.responses.create(model=MODEL, input="Same prompt")
    chat_row, responses_row = wait_usage(sql, 2)
    same = ("model_id", "kind", "config_id", "input_tokens", "output_tokens", "user_id", "cost_usd", "key_source")
    assert {k: chat_row[k] for k in same} == {k: responses_row[k] for k in same}
    assert chat_row["request_id"] != responses_row["request_id"]


def test_max_output_tokens_cut_is_incomplete(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    res = oa.responses.create(model=MODEL, input="Tell me a long story", max_output_tokens=2)
    assert res.status == "incomplete" and res.incomplete_details is not None
    assert res.incomplete_details.reason == "max_output_tokens"
    last: Any = list(oa.responses.create(model=MODEL, input="Tell me a long story", max_output_tokens=2, stream=True))[
        -1
    ]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
    ],
)
def test_server_side_state_is_refused_naming_the_field(gateway: Gateway, extra: dict[str, Any], field: str) -> None:
    gateway.enable(MODEL)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(model=MODEL, input="Hi", **extra)
    err = caught.value
    assert err.status_code == 400 and err.code == "INVALID_INPUT" and field in err.message


def test_store_false_is_accepted(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    assert client(gateway).responses.create(model=MODEL, input="Hi", store=False).to_dict()["store"] is False


def test_item_reference_is_refused(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(
            model=MODEL, input=[{"role": "user", "content": "Hi"}, {"type": "item_reference", "id": "msg_1"}]
        )
    assert "input.1" in caught.value.message and "item_reference" in caught.value.message


def test_non_function_tools_are_refused(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(model=MODEL, input="Hi", tools=[{"type": "web_search"}])
    assert "tools.0" in caught.value.message


def test_errors_in_openai_shape(gateway: Gateway) -> None:
    oa = client(gateway)
    with pytest.raises(openai.BadRequestError) as not_enabled:
        oa.responses.create(model="openai/gpt-4o", input="Hi")
    assert not_enabled.value.code == "AI_INVALID_MODEL" and "is not enabled" in not_enabled.value.message
    gateway.enable(MODEL)
    r = httpx.post(gateway.url + "/api/ai/v1/responses", json={"model": MODEL, "input": "Hi"})
    assert r.status_code == 401
    assert r.json()["error"] == {
        "message": "No token provided",
        "type": "authentication_error",
        "code": "AUTH_INVALID_CREDENTIALS",
        "param": None,
    }


def test_failure_mid_stream_raises_in_the_sdk(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    stream = client(gateway).responses.create(
        model=MODEL, input="Count to five", stream=True, extra_headers={"x-sim-fail-after-chunks": "2"}
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for event in stream:
            seen.append(event.type)
    assert "Failed to stream response" in caught.value.message
    assert seen[:2] == ["response.created", "response.in_progress"] and "response.completed" not in seen
    [row] = wait_usage(sql, 1)
    assert row["output_tokens"] > 0  # what was generated before the failure is still counted


def test_input_items_become_chat_messages(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    image = "data:image/png;base64,iVBORw0KGgo="
    items: Any = [
        {"role": "developer", "content": "Rules."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Earlier answer."}]},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": image, "detail": "low"},
            ],
        },
    ]
    res = client(gateway).responses.create(model=MODEL, input=items, metadata={"ticket": "42"})
    assert res.metadata == {"ticket": "42"} and "I saw 1 image." in res.output_text
    assert sim_chats(simulator.url)[-1]["body"]["messages"] == [
        {"role": "system", "content": "Rules."},
        {"role": "assistant", "content": "Earlier answer."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ],
        },
    ]


def test_content_and_request_policy_apply_as_for_chat(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(
        MODEL, contentPolicy={"denyPatterns": ["secret\\s{1,2}plan"]}, requestPolicy={"systemMessages": False}
    )
    oa = client(gateway)
    tool_turn: Any = [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "the secret plan"},
    ]
    with pytest.raises(openai.BadRequestError) as blocked:
        oa.responses.create(model=MODEL, input=tool_turn, tools=TOOLS)
    assert blocked.value.code == "CONTENT_BLOCKED"
    with pytest.raises(openai.BadRequestError) as refused:
        oa.responses.create(model=MODEL, input="Hi", instructions="Be nice.")
    assert refused.value.code == "FEATURE_NOT_ALLOWED" and "system messages are not accepted" in refused.value.message
    assert sim_chats(simulator.url) == []  # neither reached the upstream
    assert sql("SELECT count(*) AS n FROM ai.usage")[0]["n"] == 0


def test_retrieve_is_a_404_saying_nothing_is_stored(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    res = oa.responses.create(model=MODEL, input="Hi")
    with pytest.raises(openai.NotFoundError) as caught:
        oa.responses.retrieve(res.id)
    assert caught.value.code == "NOT_FOUND" and "does not store responses" in caught.value.message
