"""The Swift SDK (insforge-swift 0.0.10) on the wire: its requests replayed, its answers decoded as it does.

What the SDK sends (docs/clients.md): `Authorization: Bearer <anon key or the user's token>`,
`User-Agent: insforge-swift/<version>`, `Content-Type: application/json`, JSON bodies built with
`JSONSerialization` (only the parameters the caller set, `stream` always). Its `AIClient` base is
`<baseURL>/api/ai`. It decodes answers with `JSONDecoder` into the structs below (tests/sdks/decoding.py
has the rules), and a stream with its own SSE reader, replayed by `swift_stream`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.sdks.decoding import DOUBLE, INT, STRING, Arr, Obj, assert_decodes, decode, opt, req
from tests.support import Gateway, ServerThread, sim_chats, sim_reset

CHAT = "openai/gpt-4o-mini"
IMAGE = "google/gemini-2.5-flash-image-preview"
EMBED = "openai/text-embedding-3-small"
AGENT = "insforge-swift/0.0.10"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# -- the SDK's Decodable models (Sources/AI/AIClient.swift, ChatCompletionStream.swift) ----------

TOKEN_USAGE = Obj({"promptTokens": req(INT), "completionTokens": req(INT), "totalTokens": req(INT)})
TOOL_CALL = Obj(
    {"id": req(STRING), "type": req(STRING), "function": req(Obj({"name": req(STRING), "arguments": req(STRING)}))}
)
URL_CITATION = Obj(
    {
        "type": req(STRING),
        "urlCitation": opt(
            Obj(
                {
                    "url": req(STRING),
                    "title": opt(STRING),
                    "content": opt(STRING),
                    "startIndex": opt(INT),
                    "endIndex": opt(INT),
                }
            )
        ),
    }
)
CHAT_RESPONSE = Obj(
    {
        "text": req(STRING),
        "annotations": opt(Arr(URL_CITATION)),
        "tool_calls": opt(Arr(TOOL_CALL)),
        "metadata": opt(Obj({"model": req(STRING), "usage": opt(TOKEN_USAGE)})),
    }
)
IMAGE_RESPONSE = Obj(
    {
        "model": opt(STRING),
        "images": req(Arr(Obj({"type": req(STRING), "imageUrl": req(STRING)}))),
        "text": opt(STRING),
        "count": opt(INT),
        "metadata": opt(Obj({"model": req(STRING), "revisedPrompt": opt(STRING), "usage": opt(TOKEN_USAGE)})),
    }
)
EMBEDDINGS_RESPONSE = Obj(
    {
        "object": req(STRING),
        "data": req(Arr(Obj({"object": req(STRING), "embedding": req(Arr(DOUBLE)), "index": req(INT)}))),
        "metadata": opt(
            Obj(
                {
                    "model": req(STRING),
                    "usage": opt(
                        Obj({"promptTokens": opt(INT), "completionTokens": opt(INT), "totalTokens": opt(INT)})
                    ),
                }
            )
        ),
    }
)
AI_MODEL = Obj(
    {
        "id": req(STRING),
        "modelId": opt(STRING),
        "provider": opt(STRING),
        "inputModality": opt(Arr(STRING)),
        "outputModality": opt(Arr(STRING)),
        "priceLevel": opt(INT),
    }
)
ERROR_RESPONSE = Obj({"error": opt(STRING), "message": req(STRING), "statusCode": opt(INT), "nextActions": opt(STRING)})
SSE_CHUNK = Obj(
    {
        "id": opt(STRING),
        "model": opt(STRING),
        "choices": req(
            Arr(
                Obj(
                    {
                        "delta": req(
                            Obj(
                                {
                                    "role": opt(STRING),
                                    "content": opt(STRING),
                                    "tool_calls": opt(
                                        Arr(
                                            Obj(
                                                {
                                                    "index": req(INT),
                                                    "id": opt(STRING),
                                                    "type": opt(STRING),
                                                    "function": opt(
                                                        Obj({"name": opt(STRING), "arguments": opt(STRING)})
                                                    ),
                                                }
                                            )
                                        )
                                    ),
                                }
                            )
                        ),
                        "finish_reason": opt(STRING),
                    }
                )
            )
        ),
    }
)


# -- the SDK's requests and its SSE reader -------------------------------------------------------


def headers(token: str, *, stream: bool = False) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}", "User-Agent": AGENT, "Content-Type": "application/json"}
    if stream:
        h |= {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    return h


def chat_body(messages: list[dict[str, Any]], *, stream: bool = False, **options: Any) -> dict[str, Any]:
    """`chatCompletion` / `chatCompletionStream`: model, messages, stream, then the options set."""
    return {"model": CHAT, "messages": messages, "stream": stream, **options}


def post(gw: Gateway, path: str, token: str, body: dict[str, Any], **extra: str) -> httpx.Response:
    return gw.client.post(f"/api/ai/{path}", content=json.dumps(body), headers=headers(token) | extra)


@dataclass
class SwiftStream:
    """What `chatCompletionStream` yields: its chunks, and whether it finished or threw."""

    texts: list[str] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    models: list[str | None] = field(default_factory=list)
    tool_deltas: list[dict[str, Any]] = field(default_factory=list)
    threw: str | None = None
    skipped: int = 0  # events the SDK could not decode and silently dropped


def _flush(buffer: list[str], out: SwiftStream) -> bool:
    payload = "\n".join(buffer)
    if payload == "[DONE]":
        out.texts.append("")
        out.finished.append(True)
        return True
    try:
        chunk = json.loads(payload)
    except ValueError:
        out.skipped += 1
        return False
    if decode(chunk, SSE_CHUNK):
        out.skipped += 1
        return False
    choice = chunk["choices"][0] if chunk["choices"] else {}
    delta = choice.get("delta") or {}
    out.texts.append(delta.get("content") or "")
    out.finished.append(choice.get("finish_reason") is not None)
    out.models.append(chunk.get("model"))
    out.tool_deltas += delta.get("tool_calls") or []
    return out.finished[-1]


def swift_stream(gw: Gateway, token: str, body: dict[str, Any], **extra: str) -> SwiftStream:
    """The SDK's reader: `data: ` lines buffered, a blank line flushes one event, a `finish_reason`
    or `[DONE]` ends it; EOF without either is an error. A non-2xx answer is decoded as an error."""
    out = SwiftStream()
    with gw.client.stream(
        "POST", "/api/ai/chat/completion", content=json.dumps(body), headers=headers(token, stream=True) | extra
    ) as r:
        if not 200 <= r.status_code < 300:
            r.read()
            assert_decodes(r.json(), ERROR_RESPONSE)
            out.threw = f"httpError {r.status_code} {r.json().get('error')}"
            return out
        buffer: list[str] = []
        terminal = False
        for line in r.iter_lines():
            if line.startswith("data: "):
                buffer.append(line[6:])
                continue
            if line != "" or not buffer:
                continue
            terminal = _flush(buffer, out)
            buffer = []
            if terminal:
                break
        if not terminal and buffer:
            terminal = _flush(buffer, out)
    if not terminal:
        out.threw = "Stream ended without a terminal signal; response may be truncated"
    return out


@pytest.fixture
def gw(gateway: Gateway) -> Gateway:
    gateway.enable(CHAT)
    gateway.enable(IMAGE, outputModality=["image", "text"])
    gateway.enable(EMBED, inputModality=["text"], outputModality=["embeddings"])
    return gateway


def anon(gw: Gateway) -> str:
    """The SDK's default credential: the project's anon key (an `anon` JWT)."""
    return gw.token(role="anon", sub="anon-1")


# -- chat ------------------------------------------------------------------------------------------


def test_chat_plain(gw: Gateway) -> None:
    r = post(gw, "chat/completion", anon(gw), chat_body([{"role": "user", "content": "Say hi"}], maxTokens=256))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_decodes(body, CHAT_RESPONSE)
    assert body["text"] and body["metadata"]["model"] == CHAT and body["metadata"]["usage"]["totalTokens"] > 0


def test_chat_with_tools_and_multimodal_parts(gw: Gateway) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            ],
        }
    ]
    r = post(
        gw, "chat/completion", gw.token(sub="swift-user"), chat_body(messages, tools=[WEATHER_TOOL], toolChoice="auto")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_decodes(body, CHAT_RESPONSE)
    [call] = body["tool_calls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}

    # The tool result round trip the SDK builds: the assistant's tool_calls, then a `tool` message.
    follow_up = [
        *messages,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": call["id"]},
    ]
    r = post(gw, "chat/completion", gw.token(sub="swift-user"), chat_body(follow_up, tools=[WEATHER_TOOL]))
    assert r.status_code == 200, r.text
    assert_decodes(r.json(), CHAT_RESPONSE)


def test_chat_with_web_search_annotations(gw: Gateway) -> None:
    body = chat_body([{"role": "user", "content": "News?"}], webSearch={"enabled": True, "maxResults": 3})
    r = post(gw, "chat/completion", anon(gw), body)
    assert r.status_code == 200, r.text
    res = r.json()
    assert_decodes(res, CHAT_RESPONSE)
    assert len(res["annotations"]) == 3 and all(a["urlCitation"]["url"].startswith("http") for a in res["annotations"])


def test_chat_stream_every_delta_then_a_terminal_chunk(gw: Gateway) -> None:
    plain = post(gw, "chat/completion", anon(gw), chat_body([{"role": "user", "content": "Count"}])).json()
    s = swift_stream(gw, anon(gw), chat_body([{"role": "user", "content": "Count"}], stream=True))
    assert s.threw is None and s.skipped == 0
    assert s.finished[-1] and not any(s.finished[:-1])
    assert "".join(s.texts) == plain["text"] and len([t for t in s.texts if t]) >= 5
    assert s.models[-1] == CHAT


def test_chat_stream_tool_calls(gw: Gateway) -> None:
    body = chat_body([{"role": "user", "content": "Weather in Paris and Rome?"}], stream=True, tools=[WEATHER_TOOL])
    s = swift_stream(gw, gw.token(sub="swift-user"), body, **{"x-sim-tool-calls": "2"})
    assert s.threw is None and s.finished[-1]
    assert [d["index"] for d in s.tool_deltas] == [0, 1]
    assert all(d["id"].startswith("call_") and d["type"] == "function" for d in s.tool_deltas)
    assert all(d["function"]["name"] == "get_weather" for d in s.tool_deltas)
    assert all("city" in json.loads(d["function"]["arguments"]) for d in s.tool_deltas)  # complete JSON, once


def test_chat_stream_cut_short_is_an_error_not_an_end(gw: Gateway) -> None:
    body = chat_body([{"role": "user", "content": "Count"}], stream=True)
    s = swift_stream(gw, anon(gw), body, **{"x-sim-fail-after-chunks": "2"})
    assert s.threw and "truncated" in s.threw
    assert not any(s.finished) and [t for t in s.texts if t]


def test_chat_stream_refused_before_the_first_byte(gw: Gateway) -> None:
    body = chat_body([{"role": "user", "content": "hi"}], stream=True) | {"model": "openai/gpt-4o"}
    assert swift_stream(gw, anon(gw), body).threw == "httpError 400 AI_INVALID_MODEL"


def test_the_sdks_system_prompt_parameter_is_ignored(gw: Gateway, simulator: ServerThread) -> None:
    """`systemPrompt` is a top-level field the SDK sends; only the admin's system prompt is applied
    (a caller who wants one sends a `system` message, which the SDK also supports)."""
    sim_reset(simulator.url)
    r = post(
        gw, "chat/completion", anon(gw), chat_body([{"role": "user", "content": "hi"}], systemPrompt="Be a pirate.")
    )
    assert r.status_code == 200 and not decode(r.json(), CHAT_RESPONSE)
    [sent] = [e["body"] for e in sim_chats(simulator.url)]
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


# -- images, embeddings, models, errors ------------------------------------------------------------


def test_images(gw: Gateway) -> None:
    r = post(gw, "image/generation", anon(gw), {"model": IMAGE, "prompt": "A watercolor fox"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_decodes(body, IMAGE_RESPONSE)
    assert body["images"][0]["imageUrl"].startswith("data:image/png;base64,") and body["count"] == 1


@pytest.mark.parametrize("inp", ["hello", ["hello", "world"]])
def test_embeddings(gw: Gateway, inp: str | list[str]) -> None:
    r = post(gw, "embeddings", anon(gw), {"model": EMBED, "input": inp, "encoding_format": "float", "dimensions": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_decodes(body, EMBEDDINGS_RESPONSE)
    assert len(body["data"]) == (1 if isinstance(inp, str) else 2) and len(body["data"][0]["embedding"]) == 8


def test_list_models_flat_then_grouped_by_the_sdk(gw: Gateway) -> None:
    """`listModels` decodes `[AIModel]` and groups it itself. The catalog is an admin route, so an
    app must give the SDK the admin key as its Authorization header to call it."""
    r = gw.client.get("/api/ai/models", headers=headers(gw.admin_key))
    assert r.status_code == 200, r.text
    models = r.json()
    assert_decodes(models, Arr(AI_MODEL))
    text = [m for m in models if "text" in (m.get("outputModality") or [])]
    image = [m for m in models if "image" in (m.get("outputModality") or [])]
    assert CHAT in [m["id"] for m in text] and IMAGE in [m["id"] for m in image]
    assert {m["priceLevel"] for m in models} <= {0, 1, 2, 3}

    refused = gw.client.get("/api/ai/models", headers=headers(anon(gw)))
    assert refused.status_code == 403 and not decode(refused.json(), ERROR_RESPONSE)


def test_errors_decode_as_error_response(gw: Gateway) -> None:
    for r in (
        post(gw, "chat/completion", "not-a-jwt", chat_body([{"role": "user", "content": "hi"}])),
        post(gw, "chat/completion", anon(gw), chat_body([{"role": "user", "content": "hi"}]) | {"model": "x/y"}),
        post(gw, "embeddings", anon(gw), {"model": EMBED, "input": []}),
    ):
        assert r.status_code in (400, 401), r.text
        assert_decodes(r.json(), ERROR_RESPONSE)
