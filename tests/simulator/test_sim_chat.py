"""Non-stream chat completions against the simulator over real HTTP: shapes, usage, behaviours."""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib
from typing import Any

import orjson
import pytest

from .conftest import KEY, Sim
from .helpers import GEN_ID, TIME_TOOL, WEATHER_TOOL, expected_usage, user


def chat(sim: Sim, body: dict[str, Any], **headers: str) -> Any:
    body.setdefault("model", "openai/gpt-4o-mini")
    return sim.client.post("/chat/completions", json=body, headers=headers)


def test_non_stream_shape_usage_and_log(sim: Sim) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        user("What is the capital of France and why?"),
    ]
    r = chat(sim, {"messages": messages, "temperature": 0.2})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == [
        "id",
        "provider",
        "model",
        "object",
        "created",
        "choices",
        "system_fingerprint",
        "usage",
    ]
    assert GEN_ID.fullmatch(body["id"]) and r.headers["x-generation-id"] == body["id"]
    assert body["provider"] == "OpenAI"
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["object"] == "chat.completion"
    assert abs(body["created"] - time.time()) < 5
    (choice,) = body["choices"]
    assert list(choice) == ["logprobs", "finish_reason", "native_finish_reason", "index", "message"]
    assert choice["finish_reason"] == choice["native_finish_reason"] == "stop"
    message = choice["message"]
    assert message == {
        "role": "assistant",
        "content": "Simulated reply to: What is the capital of France and why?",
        "refusal": None,
        "reasoning": None,
    }
    # prompt: (3 + 4) + (8 + 4); completion: 11 words of the reply
    assert body["usage"] == expected_usage(19, 11)

    entry = sim.last()
    assert entry["path"] == "/api/v1/chat/completions" and entry["method"] == "POST"
    assert entry["headers"]["authorization"] == f"Bearer {KEY}"
    assert entry["body"]["messages"] == messages
    assert entry["usage"] == body["usage"]
    assert entry["model"] == "openai/gpt-4o-mini" and entry["status"] == 200 and entry["cancelled"] is False


def test_reply_is_padded_and_truncated(sim: Sim) -> None:
    body = chat(sim, {"messages": [user("hi")]}, **{"x-sim-chunks": "8"}).json()
    content = body["choices"][0]["message"]["content"]
    assert content.startswith("Simulated reply to: hi ") and len(content.split()) == 8
    assert body["usage"]["completion_tokens"] == 8

    long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    body = chat(sim, {"messages": [user(long)], "max_tokens": 4}).json()
    assert body["choices"][0]["message"]["content"] == "Simulated reply to: one"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4


def test_snippet_is_cut_at_60_chars(sim: Sim) -> None:
    text = "word " * 40
    content = chat(sim, {"messages": [user(text)]}).json()["choices"][0]["message"]["content"]
    assert content.endswith("...")
    assert len(content) <= len("Simulated reply to: ") + 63


def test_auth_errors(sim: Sim) -> None:
    body = {"model": "openai/gpt-4o", "messages": [user("x")]}
    r = sim.client.post("/chat/completions", json=body, headers={"Authorization": ""})
    assert r.status_code == 401 and r.json() == {"error": {"message": "No auth credentials found", "code": 401}}
    for bad in ("sk-or-v1-invalid", "sk-or-v1-revoked-1"):
        r = sim.client.post("/chat/completions", json=body, headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json() == {"error": {"message": "User not found.", "code": 401}}
    r = sim.client.post("/chat/completions", json=body, headers={"Authorization": "Bearer sk-nocredit"})
    assert r.status_code == 402 and r.json()["error"]["message"].startswith("Insufficient credits")
    r = sim.client.post("/chat/completions", json=body, headers={"Authorization": "Bearer sk-ratelimited"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == 429


def test_invalid_json_and_missing_messages(sim: Sim) -> None:
    r = sim.client.post("/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": {"code": 400, "message": "Invalid JSON"}}
    assert sim.last()["body"] is None and sim.last()["status"] == 400
    r = chat(sim, {"messages": []})
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]


def test_model_ids_and_fallbacks(sim: Sim) -> None:
    r = chat(sim, {"model": "gpt-4o", "messages": [user("x")]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "gpt-4o is not a valid model ID"
    r = chat(sim, {"model": "openai/nonexistent-model", "messages": [user("x")]})
    assert r.status_code == 404
    assert r.json()["error"] == {"message": "No endpoints found for openai/nonexistent-model.", "code": 404}
    r = chat(sim, {"model": "openai/gpt-4o-down", "messages": [user("x")]})
    assert r.status_code == 502 and r.json()["error"]["metadata"]["provider_name"] == "OpenAI"

    fallbacks = ["anthropic/claude-3.5-haiku-down", "anthropic/claude-3.5-haiku", "google/gemini-2.5-pro"]
    r = chat(sim, {"model": "openai/gpt-4o-down", "models": fallbacks, "messages": [user("x")]})
    assert r.status_code == 200
    assert r.json()["model"] == "anthropic/claude-3.5-haiku" and r.json()["provider"] == "Anthropic"
    assert sim.last()["model"] == "anthropic/claude-3.5-haiku"

    r = chat(sim, {"model": "openai/a-down", "models": ["openai/b-down"], "messages": [user("x")]})
    assert r.status_code == 502

    # The primary is used when it is up, even with fallbacks; variants are echoed.
    r = chat(sim, {"model": "meta-llama/llama-3.3-70b-instruct:free", "models": fallbacks, "messages": [user("x")]})
    assert r.json()["model"] == "meta-llama/llama-3.3-70b-instruct:free" and r.json()["provider"] == "Meta"


def test_context_window_and_fallback(sim: Sim) -> None:
    long = [user("word " * 80)]
    r = chat(sim, {"model": "sim/tiny-context", "messages": long})
    assert r.status_code == 400 and "maximum context length is 64 tokens" in r.json()["error"]["message"]
    r = chat(sim, {"model": "sim/tiny-context", "models": ["openai/gpt-4o"], "messages": long})
    assert r.status_code == 200 and r.json()["model"] == "openai/gpt-4o"
    assert chat(sim, {"model": "sim/tiny-context", "messages": [user("short")]}).status_code == 200


def test_provider_keys_and_ignored_fields(sim: Sim) -> None:
    r = chat(sim, {"messages": [user("x")], "provider": {"order": ["openai"], "colour": "red"}})
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    body = {
        "messages": [user("x")],
        "provider": {"sort": "price", "allow_fallbacks": True, "data_collection": "deny", "only": ["openai"]},
        "usage": {"include": True},
        "stream_options": {"include_usage": True},
        "transforms": ["middle-out"],
        "route": "fallback",
        "top_k": 3,
        "repetition_penalty": 1.1,
        "some_future_param": {"a": 1},
    }
    assert chat(sim, body).status_code == 200


def test_vision_and_pdf(sim: Sim) -> None:
    parts = [
        {"type": "text", "text": "Describe these"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {
            "type": "file",
            "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        },
    ]
    body = chat(
        sim,
        {
            "messages": [{"role": "user", "content": parts}],
            "plugins": [{"id": "file-parser", "pdf": {"engine": "native"}}],
        },
    ).json()
    message = body["choices"][0]["message"]
    assert message["content"] == "Simulated reply to: Describe these I saw 2 images. I read report.pdf."
    (annotation,) = message["annotations"]
    assert annotation["type"] == "file" and annotation["file"]["name"] == "report.pdf"
    assert re.fullmatch(r"[0-9a-f]{64}", annotation["file"]["hash"])
    assert annotation["file"]["content"][0]["type"] == "text"
    # prompt: 2 words + 4 + 2 * 85
    assert body["usage"]["prompt_tokens"] == 176
    assert body["usage"]["completion_tokens"] == len(message["content"].split())


def test_thinking_variant(sim: Sim) -> None:
    body = chat(sim, {"model": "deepseek/deepseek-r1:thinking", "messages": [user("Why is the sky blue?")]}).json()
    message = body["choices"][0]["message"]
    assert isinstance(message["reasoning"], str) and message["reasoning"]
    assert message["reasoning_details"][0]["type"] == "reasoning.text"
    reasoning_words = len(message["reasoning"].split())
    usage = body["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == reasoning_words
    assert usage["completion_tokens"] == len(message["content"].split()) + reasoning_words
    assert usage == expected_usage(usage["prompt_tokens"], usage["completion_tokens"], reasoning_words)


def test_tool_calls_non_stream(sim: Sim) -> None:
    body = chat(sim, {"messages": [user("Weather in Paris?")], "tools": [WEATHER_TOOL, TIME_TOOL]}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["index"] == 0 and re.fullmatch(r"call_[A-Za-z0-9]+", call["id"])
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris", "days": 1}
    assert body["usage"]["completion_tokens"] == 10

    body = chat(sim, {"messages": [user("x")], "tools": [WEATHER_TOOL, TIME_TOOL]}, **{"x-sim-tool-calls": "3"}).json()
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time", "get_weather"]
    assert [c["index"] for c in calls] == [0, 1, 2] and len({c["id"] for c in calls}) == 3
    assert orjson.loads(calls[1]["function"]["arguments"]) == {"zone": "UTC"}

    body = chat(
        sim,
        {"messages": [user("x")], "tools": [WEATHER_TOOL, TIME_TOOL], "parallel_tool_calls": False},
        **{"x-sim-tool-calls": "3"},
    ).json()
    assert len(body["choices"][0]["message"]["tool_calls"]) == 1

    named = {"type": "function", "function": {"name": "get_time"}}
    body = chat(sim, {"messages": [user("x")], "tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": named}).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"

    body = chat(sim, {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": "none"}).json()
    assert "tool_calls" not in body["choices"][0]["message"] and body["choices"][0]["finish_reason"] == "stop"

    followup = [
        user("Weather?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny and 21C"},
    ]
    body = chat(sim, {"messages": followup, "tools": [WEATHER_TOOL]}).json()
    assert body["choices"][0]["message"]["content"].startswith("Simulated reply using the tool result: Sunny")


def test_web_search_annotations(sim: Sim) -> None:
    body = chat(sim, {"messages": [user("news")], "plugins": [{"id": "web", "max_results": 3}]}).json()
    annotations = body["choices"][0]["message"]["annotations"]
    assert len(annotations) == 3
    for a in annotations:
        assert a["type"] == "url_citation"
        assert a["url_citation"]["url"].startswith("https://") and a["url_citation"]["title"]
    assert body["usage"]["server_tool_use_details"] == {"web_search_requests": 1}

    body = chat(sim, {"model": "openai/gpt-4o:online", "messages": [user("news")]}).json()
    assert len(body["choices"][0]["message"]["annotations"]) == 2
    body = chat(sim, {"messages": [user("news")]}).json()
    assert "annotations" not in body["choices"][0]["message"]


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """Parse and CRC-check every chunk of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks.append((kind, data))
        pos += 12 + length
    assert pos == len(png) and chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    return chunks


def decode_png(url: str) -> tuple[int, int, bytes]:
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.split(",", 1)[1])
    chunks = png_chunks(png)
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour_type) == (8, 2)
    pixels = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    return width, height, png


@pytest.mark.parametrize(
    ("ratio", "size"), [(None, (64, 64)), ("1:1", (64, 64)), ("16:9", (96, 54)), ("9:16", (54, 96))]
)
def test_image_generation(sim: Sim, ratio: str | None, size: tuple[int, int]) -> None:
    body: dict[str, Any] = {
        "model": "google/gemini-2.5-flash-image-preview",
        "messages": [user("a red square")],
        "modalities": ["image", "text"],
    }
    if ratio:
        body["image_config"] = {"aspect_ratio": ratio}
    data = chat(sim, body).json()
    message = data["choices"][0]["message"]
    assert message["content"] == "Here is your image."
    (image,) = message["images"]
    assert image["type"] == "image_url"
    width, height, _ = decode_png(image["image_url"]["url"])
    assert (width, height) == size
    assert data["usage"]["completion_tokens"] == 4 + 1290
    assert data["usage"]["completion_tokens_details"]["image_tokens"] == 1290


def test_image_padding_over_6mb(sim: Sim) -> None:
    target = 7_000_000
    r = chat(
        sim,
        {
            "model": "google/gemini-2.5-flash-image-preview",
            "messages": [user("big")],
            "modalities": ["image"],
        },
        **{"x-sim-image-bytes": str(target)},
    )
    assert r.status_code == 200 and len(r.content) > 6 * 1024 * 1024
    _, _, png = decode_png(r.json()["choices"][0]["message"]["images"][0]["image_url"]["url"])
    assert abs(len(png) - target) <= 16


def test_json_response_format(sim: Sim) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    body = chat(
        sim,
        {
            "messages": [user("x")],
            "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        },
    ).json()
    assert orjson.loads(body["choices"][0]["message"]["content"]) == {"name": "Paris", "age": 1}
    body = chat(sim, {"messages": [user("x")], "response_format": {"type": "json_object"}}).json()
    assert orjson.loads(body["choices"][0]["message"]["content"])["reply"].startswith("Simulated reply to: x")


@pytest.mark.parametrize("status", [429, 503, 500, 400])
def test_fail_status(sim: Sim, status: int) -> None:
    r = chat(sim, {"messages": [user("x")]}, **{"x-sim-fail-status": str(status), "x-sim-retry-after": "7"})
    assert r.status_code == status
    body = r.json()
    assert body["user_id"] == "user_sim"
    assert body["error"]["code"] == status and body["error"]["message"]
    assert body["error"]["metadata"]["raw"] and body["error"]["metadata"]["provider_name"] == "OpenAI"
    if status in (429, 503):
        assert r.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in r.headers
    assert sim.last()["status"] == status and sim.last()["usage"] is None


def test_fail_times_then_success(sim: Sim) -> None:
    headers = {"x-sim-fail-status": "503", "x-sim-fail-times": "2", "x-sim-request-key": "retry-a"}
    statuses = [chat(sim, {"messages": [user("x")]}, **headers).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    other = {**headers, "x-sim-request-key": "retry-b"}
    assert chat(sim, {"messages": [user("x")]}, **other).status_code == 503
    # fail-times alone means 502
    only = {"x-sim-fail-times": "1", "x-sim-request-key": "retry-c"}
    assert [chat(sim, {"messages": [user("x")]}, **only).status_code for _ in range(2)] == [502, 200]


def test_garbage_and_error_200(sim: Sim) -> None:
    r = chat(sim, {"messages": [user("x")]}, **{"x-sim-garbage": "1"})
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)
    r = chat(sim, {"messages": [user("x")]}, **{"x-sim-error-200": "1"})
    assert r.status_code == 200
    body = r.json()
    assert body["error"]["code"] == 502 and body["error"]["message"] == "Provider returned error"
    assert body["user_id"] == "user_sim" and "choices" not in body


def test_latency_and_bad_control(sim: Sim) -> None:
    start = time.perf_counter()
    assert chat(sim, {"messages": [user("x")]}, **{"x-sim-latency-ms": "200"}).status_code == 200
    assert time.perf_counter() - start >= 0.19
    r = chat(sim, {"messages": [user("x")]}, **{"x-sim-chunks": "many"})
    assert r.status_code == 400 and "x-sim-chunks" in r.json()["error"]["message"]
