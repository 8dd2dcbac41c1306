"""`stop`, `logprobs` and a forcing `tool_choice` through the OpenAI door with the `openai` package:
passed upstream as given and the upstream's answer relayed, plain and streamed."""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from tests.support import Gateway, ServerThread, sim_chats

MODEL = "openai/gpt-4o-mini"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "final_result",
            "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}},
        },
    },
]


def client(gw: Gateway) -> OpenAI:
    return OpenAI(base_url=gw.url + "/api/ai/v1", api_key=gw.token(), max_retries=0, timeout=20)


def test_stop_cuts_the_answer_plain_and_streamed(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    messages: Any = [{"role": "user", "content": "Say hi"}]
    res = oa.chat.completions.create(model=MODEL, messages=messages, stop=[" to:"])
    assert res.choices[0].message.content == "Simulated reply" and res.choices[0].finish_reason == "stop"
    assert sim_chats(simulator.url)[-1]["body"]["stop"] == [" to:"]
    chunks = list(oa.chat.completions.create(model=MODEL, messages=messages, stop=" to:", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Simulated reply"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_logprobs_reach_the_caller_plain_and_streamed(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    messages: Any = [{"role": "user", "content": "Say hi"}]
    res = oa.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=2)
    logprobs = res.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == res.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in logprobs.content)

    streamed = []
    for chunk in oa.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=2, stream=True):
        if chunk.choices and chunk.choices[0].logprobs and chunk.choices[0].logprobs.content:
            streamed += chunk.choices[0].logprobs.content
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in logprobs.content]


def test_required_tool_choice_calls_a_tool_after_the_tool_result(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = oa.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, tool_choice="required")
    call = (first.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.function.name == "get_weather"
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
    ]
    second = oa.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, tool_choice="required")
    calls = second.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["final_result"]
    none = oa.chat.completions.create(model=MODEL, messages=messages[:1], tools=TOOLS, tool_choice="none")
    assert none.choices[0].message.tool_calls is None and none.choices[0].finish_reason == "stop"
