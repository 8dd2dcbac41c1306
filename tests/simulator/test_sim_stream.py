"""Streaming chat completions: frame sequence, tool-call deltas, errors, timing, disconnects."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import orjson

from .conftest import Sim
from .helpers import GEN_ID, TIME_TOOL, WEATHER_TOOL, expected_usage, user

COMMENT = ": OPENROUTER PROCESSING"


def stream_body(body: dict[str, Any]) -> dict[str, Any]:
    return {"model": "openai/gpt-4o-mini", "stream": True, **body}


def read_events(sim: Sim, body: dict[str, Any], **headers: str) -> tuple[httpx.Response, list[tuple[float, str]]]:
    """POST a stream and return the response and its SSE events (comments and data) with arrival times."""
    events: list[tuple[float, str]] = []
    with sim.client.stream("POST", "/chat/completions", json=stream_body(body), headers=headers) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line:
                events.append((time.perf_counter(), line))
    return r, events


def data_frames(events: list[tuple[float, str]]) -> list[Any]:
    """Decoded ``data:`` payloads (``"[DONE]"`` kept as the string)."""
    frames: list[Any] = []
    for _, line in events:
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            frames.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return frames


def test_stream_frame_sequence_matches_non_stream(sim: Sim) -> None:
    request = {"messages": [user("Tell me about streams please")], "stream_options": {"include_usage": True}}
    r, events = read_events(sim, request, **{"x-sim-chunks": "6"})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert events[0][1] == COMMENT
    frames = data_frames(events)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    content_chunks, finish, usage_chunk = chunks[:-2], chunks[-2], chunks[-1]
    assert len(content_chunks) == 6
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and GEN_ID.fullmatch(ids.pop()) and r.headers["x-generation-id"] == chunks[0]["id"]
    for c in chunks:
        assert list(c)[:6] == ["id", "provider", "model", "object", "created", "choices"]
        assert c["object"] == "chat.completion.chunk" and c["provider"] == "OpenAI"
        assert c["model"] == "openai/gpt-4o-mini"
        (choice,) = c["choices"]
        assert choice["delta"]["role"] == "assistant"
        assert "native_finish_reason" in choice
    for c in content_chunks:
        assert c["choices"][0]["finish_reason"] is None
    assert all(c["choices"][0]["delta"]["content"].startswith(" ") for c in content_chunks[1:])
    assert finish["choices"][0]["finish_reason"] == finish["choices"][0]["native_finish_reason"] == "stop"
    assert "usage" not in finish
    # observed usage chunk: one choice with an empty delta and finish_reason null
    assert usage_chunk["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "finish_reason": None,
            "native_finish_reason": None,
            "logprobs": None,
        }
    ]
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    assert usage_chunk["usage"] == expected_usage(5 + 4, len(text.split()))

    plain = sim.client.post(
        "/chat/completions", json={**request, "model": "openai/gpt-4o-mini"}, headers={"x-sim-chunks": "6"}
    ).json()
    assert plain["choices"][0]["message"]["content"] == text
    assert plain["usage"] == usage_chunk["usage"]

    entry = sim.requests()[-2]
    assert entry["stream"] is True and entry["chunks_sent"] == 8 and entry["cancelled"] is False
    assert entry["usage"] == usage_chunk["usage"]


def merge_tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Merge tool-call deltas by index the way OpenAI-compatible clients do."""
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            slot = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": "", "fragments": 0})
            if "id" in tc:
                assert slot["id"] is None, "id repeated after the first fragment"
                slot["id"] = tc["id"]
            fn = tc.get("function", {})
            if "name" in fn:
                assert slot["name"] is None, "name repeated after the first fragment"
                slot["name"] = fn["name"]
            slot["arguments"] += fn.get("arguments", "")
            slot["fragments"] += 1
    return calls


def test_stream_parallel_tool_calls_merge(sim: Sim) -> None:
    body = {"messages": [user("Weather and time?")], "tools": [WEATHER_TOOL, TIME_TOOL]}
    _, events = read_events(sim, body, **{"x-sim-tool-calls": "3"})
    frames = data_frames(events)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    calls = merge_tool_calls(chunks)
    assert sorted(calls) == [0, 1, 2]
    assert [calls[i]["name"] for i in range(3)] == ["get_weather", "get_time", "get_weather"]
    assert len({c["id"] for c in calls.values()}) == 3
    assert orjson.loads(calls[0]["arguments"]) == {"city": "Paris", "days": 1}
    assert orjson.loads(calls[1]["arguments"]) == {"zone": "UTC"}
    assert all(c["fragments"] >= 3 for c in calls.values())  # header + 2+ argument fragments
    order = [
        c["choices"][0]["delta"]["tool_calls"][0]["index"] for c in chunks if c["choices"][0]["delta"].get("tool_calls")
    ]
    assert order[:3] == [0, 1, 2] and order != sorted(order)  # interleaved by index
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 30


def test_stream_reasoning_annotations_and_images(sim: Sim) -> None:
    body = {"model": "x-ai/grok-4:thinking", "messages": [user("news")], "plugins": [{"id": "web"}]}
    frames = data_frames(read_events(sim, body)[1])[:-1]
    deltas = [f["choices"][0]["delta"] for f in frames]
    reasoning = "".join(d.get("reasoning", "") for d in deltas)
    assert reasoning and deltas[0].get("reasoning")
    annotated = [i for i, d in enumerate(deltas) if d.get("annotations")]
    assert annotated == [len(deltas) - 3]  # after the content, before finish and usage
    assert [a["type"] for a in deltas[annotated[0]]["annotations"]] == ["url_citation", "url_citation"]
    assert frames[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == len(reasoning.split())

    body = {
        "model": "google/gemini-2.5-flash-image-preview",
        "messages": [user("cat")],
        "modalities": ["image", "text"],
    }
    frames = data_frames(read_events(sim, body)[1])[:-1]
    images = [f["choices"][0]["delta"]["images"] for f in frames if f["choices"][0]["delta"].get("images")]
    assert len(images) == 1 and images[0][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


def test_mid_stream_error_without_done(sim: Sim) -> None:
    _, events = read_events(sim, {"messages": [user("x")]}, **{"x-sim-fail-after-chunks": "2"})
    frames = data_frames(events)
    assert "[DONE]" not in frames
    assert len(frames) == 3
    assert all("error" not in f for f in frames[:2])
    error = frames[-1]
    assert error["error"]["code"] == 502 and isinstance(error["error"]["code"], int)
    assert error["error"]["metadata"]["error_type"] == "provider_unavailable"
    assert error["choices"][0]["finish_reason"] == "error"
    entry = sim.last()
    assert entry["chunks_sent"] == 3 and entry["usage"] is None


def test_pre_stream_error_is_http_status(sim: Sim) -> None:
    r = sim.client.post(
        "/chat/completions",
        json=stream_body({"messages": [user("x")]}),
        headers={"x-sim-fail-status": "429", "x-sim-retry-after": "3"},
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.headers["content-type"] == "application/json" and r.json()["error"]["code"] == 429


def test_chunk_delay_frames_arrive_separately(sim: Sim) -> None:
    delay = 0.08
    start = time.perf_counter()
    _, events = read_events(sim, {"messages": [user("x")]}, **{"x-sim-chunk-delay-ms": "80", "x-sim-chunks": "4"})
    times = [t for t, line in events if line.startswith("data: ")]
    assert len(times) == 4 + 3  # content, finish, usage, [DONE]
    # The server waits before each of the 6 frames after the first: a hard lower bound.
    assert times[-1] - start >= delay * 6 * 0.98
    # Frames are not coalesced: (almost) every one arrives in its own read, ~80 ms apart.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert sum(gap >= delay * 0.5 for gap in gaps) >= 5, gaps


def test_latency_sends_keepalive_comments(sim: Sim) -> None:
    start = time.perf_counter()
    _, events = read_events(sim, {"messages": [user("x")]}, **{"x-sim-latency-ms": "350", "x-sim-keepalive-ms": "100"})
    first_data = next(i for i, (_, line) in enumerate(events) if line.startswith("data: "))
    comments = [line for _, line in events[:first_data]]
    assert comments == [COMMENT] * 4  # the initial comment + keep-alives at 100, 200 and 300 ms
    assert events[first_data][0] - start >= 0.35 * 0.98
    assert events[first_data][0] - events[0][0] >= 0.1  # the first comment came before the wait


def test_client_disconnect_is_recorded(sim: Sim) -> None:
    headers = {"x-sim-chunk-delay-ms": "100", "x-sim-chunks": "30"}
    seen = 0
    with sim.client.stream(
        "POST", "/chat/completions", json=stream_body({"messages": [user("x")]}), headers=headers
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen == 2:
                    break
    deadline = time.monotonic() + 3
    entry = sim.last()
    while not entry["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.05)
        entry = sim.last()
    assert entry["cancelled"] is True
    assert 2 <= entry["chunks_sent"] < 10 and entry["usage"] is None
