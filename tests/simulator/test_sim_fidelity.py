"""The request fields agents and SDKs lean on: `tool_choice` on every turn, `stop`, `logprobs`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from .conftest import Sim
from .helpers import TIME_TOOL, WEATHER_TOOL, user
from .test_sim_stream import data_frames, read_events

MODEL = "openai/gpt-4o-mini"
OUTPUT_TOOL = {
    "type": "function",
    "function": {
        "name": "final_result",
        "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    },
}


def chat(sim: Sim, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = sim.client.post("/chat/completions", json={"model": MODEL, **body}, headers=headers)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def after_tool_result(name: str) -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    return [
        user("Weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny and 21C"},
    ]


def called(answer: dict[str, Any]) -> list[str]:
    return [c["function"]["name"] for c in answer["choices"][0]["message"].get("tool_calls") or []]


# -- tool_choice ------------------------------------------------------------------------------------


def test_required_calls_a_tool_after_a_tool_result_moving_on_to_the_next_tool(sim: Sim) -> None:
    """A pydantic-ai-style agent: function tool first, then its output tool, both under "required"."""
    tools = [WEATHER_TOOL, OUTPUT_TOOL]
    first = chat(sim, {"messages": [user("Weather in Paris?")], "tools": tools, "tool_choice": "required"})
    assert called(first) == ["get_weather"] and first["choices"][0]["finish_reason"] == "tool_calls"
    second = chat(sim, {"messages": after_tool_result("get_weather"), "tools": tools, "tool_choice": "required"})
    assert called(second) == ["final_result"] and second["choices"][0]["finish_reason"] == "tool_calls"
    args = orjson.loads(second["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert args == {"answer": "Paris"}
    # Every tool called already: the last one (the output tool) again, never text.
    only_output = chat(
        sim, {"messages": after_tool_result("final_result"), "tools": [OUTPUT_TOOL], "tool_choice": "required"}
    )
    assert called(only_output) == ["final_result"]


def test_named_function_is_called_on_every_turn(sim: Sim) -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    tools = [WEATHER_TOOL, TIME_TOOL]
    for messages in ([user("What time is it?")], after_tool_result("get_time")):
        answer = chat(sim, {"messages": messages, "tools": tools, "tool_choice": named})
        assert called(answer) == ["get_time"], answer


def test_auto_answers_in_text_after_a_tool_result_and_none_never_calls(sim: Sim) -> None:
    tools = [WEATHER_TOOL]
    auto = chat(sim, {"messages": after_tool_result("get_weather"), "tools": tools, "tool_choice": "auto"})
    assert called(auto) == [] and auto["choices"][0]["message"]["content"].startswith("Simulated reply using")
    for messages in ([user("Weather?")], after_tool_result("get_weather")):
        none = chat(sim, {"messages": messages, "tools": tools, "tool_choice": "none"})
        assert called(none) == [] and none["choices"][0]["finish_reason"] == "stop"


def test_required_streams_its_tool_call_after_a_tool_result(sim: Sim) -> None:
    body = {
        "messages": after_tool_result("get_weather"),
        "tools": [WEATHER_TOOL, OUTPUT_TOOL],
        "tool_choice": "required",
    }
    _, events = read_events(sim, body)
    frames = [f for f in data_frames(events) if isinstance(f, dict)]
    names = [
        tc["function"]["name"]
        for f in frames
        for tc in f["choices"][0]["delta"].get("tool_calls") or []
        if tc.get("function", {}).get("name")
    ]
    assert names == ["final_result"]
    assert [f["choices"][0]["finish_reason"] for f in frames if f["choices"][0]["finish_reason"]] == ["tool_calls"]


# -- stop -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("reply", "Simulated "),
        (["zzz", " to:"], "Simulated reply"),
        (["to", "Simulated reply"], ""),
        ("not in the answer", "Simulated reply to: Say hi lorem"),
    ],
)
def test_stop_cuts_the_text_at_the_first_occurrence_plain_and_streamed(sim: Sim, stop: Any, expected: str) -> None:
    body = {"messages": [user("Say hi")], "stop": stop}
    plain = chat(sim, body, **{"x-sim-chunks": "6"})
    choice = plain["choices"][0]
    assert choice["message"]["content"] == expected and choice["finish_reason"] == "stop"
    assert plain["usage"]["completion_tokens"] == len(expected.split())

    _, events = read_events(sim, body, **{"x-sim-chunks": "6"})
    frames = [f for f in data_frames(events) if isinstance(f, dict)]
    streamed = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames)
    assert streamed == expected
    assert [f["choices"][0]["finish_reason"] for f in frames if f["choices"][0]["finish_reason"]] == ["stop"]


def test_stop_before_the_token_limit_ends_with_stop_not_length(sim: Sim) -> None:
    answer = chat(sim, {"messages": [user("Say hi")], "stop": " to", "max_tokens": 3})
    assert answer["choices"][0]["message"]["content"] == "Simulated reply"
    assert answer["choices"][0]["finish_reason"] == "stop"
    cut = chat(sim, {"messages": [user("Say hi")], "stop": "Say", "max_tokens": 2})
    assert (
        cut["choices"][0]["message"]["content"] == "Simulated reply" and cut["choices"][0]["finish_reason"] == "length"
    )


# -- logprobs ---------------------------------------------------------------------------------------


def test_logprobs_per_token_with_top_alternatives(sim: Sim) -> None:
    answer = chat(sim, {"messages": [user("Say hi")], "logprobs": True, "top_logprobs": 3})
    choice = answer["choices"][0]
    entries = choice["logprobs"]["content"]
    assert choice["logprobs"]["refusal"] is None
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    assert len(entries) == answer["usage"]["completion_tokens"]
    for e in entries:
        assert e["logprob"] <= 0 and bytes(e["bytes"]).decode() == e["token"]
        assert len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["token"] == e["token"]
        assert [t["logprob"] for t in e["top_logprobs"]] == sorted(
            (t["logprob"] for t in e["top_logprobs"]), reverse=True
        )
    again = chat(sim, {"messages": [user("Say hi")], "logprobs": True, "top_logprobs": 3})
    assert again["choices"][0]["logprobs"] == choice["logprobs"]  # deterministic

    plain = chat(sim, {"messages": [user("Say hi")], "logprobs": True})
    assert all(e["top_logprobs"] == [] for e in plain["choices"][0]["logprobs"]["content"])
    assert chat(sim, {"messages": [user("Say hi")]})["choices"][0]["logprobs"] is None


def test_streamed_logprobs_cover_each_frame_and_match_the_plain_answer(sim: Sim) -> None:
    body = {"messages": [user("Say hi")], "logprobs": True, "top_logprobs": 2}
    plain = chat(sim, body)["choices"][0]["logprobs"]["content"]
    _, events = read_events(sim, body)
    frames = [f for f in data_frames(events) if isinstance(f, dict)]
    streamed: list[dict[str, Any]] = []
    for f in frames:
        choice = f["choices"][0]
        if choice["delta"].get("content"):
            tokens = choice["logprobs"]["content"]
            assert "".join(t["token"] for t in tokens) == choice["delta"]["content"]
            streamed += tokens
        else:
            assert choice["logprobs"] is None
    assert streamed == plain
