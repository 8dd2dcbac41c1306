"""InsForge's own shapes (the native dialect), as every InsForge SDK parses them (docs/clients.md).

Bodies are supersets: each carries every key any of the SDKs (JS, Python, Swift, Kotlin) reads,
so one body serves them all; where two SDKs need different shapes, the caller's `Client`
(api/clients.py) picks. Chat answers carry `text` plus the keys other SDKs and older versions read
(`content`, `success`, `response`, `model`, `usage`); usage is camelCase `{promptTokens,
completionTokens, totalTokens}`, and `metadata.usage` is always present because the Kotlin SDK
requires it.

Streams: `@insforge/sdk` gets one `data: {"chunk": "..."}` event per upstream content delta, then
`tokenUsage`, `tool_calls` and `annotations` events when there are any, then `{"done": true}`.
The Swift and Kotlin SDKs read only OpenAI-style `choices[0].delta` frames: they get one
`{"choices": [{"delta": {"content"}}]}` frame per delta, the tool calls as one delta, a final frame
with `finish_reason`, then `data: [DONE]`. In both, a failure after the stream started is one
`{"error": true, "message"}` event and no end marker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .. import sse
from ..flows.chat import ChatStream
from ..flows.common import Answer, content_text
from ..flows.embeddings import served_model
from ..flows.images import Images
from ..flows.stream_state import ToolCallAssembler
from ..usage import Usage
from .clients import Client
from .responses import KEEPALIVE

DONE_FRAME = b"data: [DONE]\n\n"
_NO_USAGE = {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}


def camel_usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"promptTokens": usage.prompt, "completionTokens": usage.completion, "totalTokens": usage.total}


def camel_annotations(notes: list[Any]) -> list[dict[str, Any]]:
    """`url_citation` annotations with camelCase keys, as the SDK's schema has them."""
    out = []
    for n in notes:
        if not isinstance(n, dict) or n.get("type") != "url_citation":
            continue
        c = n.get("url_citation") or {}
        item = {"url": c.get("url")}
        for src, dst in (
            ("title", "title"),
            ("content", "content"),
            ("start_index", "startIndex"),
            ("end_index", "endIndex"),
        ):
            if c.get(src) is not None:
                item[dst] = c[src]
        out.append({"type": "url_citation", "urlCitation": item})
    return out


def chat_body(answer: Answer[dict[str, Any]]) -> dict[str, Any]:
    upstream, model = answer.result, answer.model
    choice = (upstream.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = content_text(message.get("content"))
    body: dict[str, Any] = {"text": text, "content": text, "success": True}
    calls = ToolCallAssembler()
    for tc in message.get("tool_calls") or ():
        if isinstance(tc, dict) and tc.get("type", "function") == "function":
            calls.add(tc)
    if calls.calls:
        body["tool_calls"] = calls.result()
    notes = camel_annotations(message.get("annotations") or [])
    if notes:
        body["annotations"] = notes
    if isinstance(message.get("reasoning"), str) and message["reasoning"]:
        body["reasoning"] = message["reasoning"]
    usage = camel_usage(Usage.read(upstream.get("usage")))
    body["metadata"] = {"model": model, "usage": usage or _NO_USAGE}
    body["response"] = text
    body["model"] = model
    if usage:
        body["usage"] = usage
    return body


def chat_frames(stream: ChatStream, client: Client) -> AsyncIterator[bytes]:
    """The stream in the shape the calling SDK parses."""
    return _delta_frames(stream) if client.wants_delta_stream else _chunk_frames(stream)


async def _chunk_frames(stream: ChatStream) -> AsyncIterator[bytes]:
    """Upstream chunks → `{"chunk"}` events, one per content delta, the moment each arrives."""
    state = stream.state
    async for chunk in stream.chunks():
        if chunk is None:
            yield KEEPALIVE
            continue
        for content in state.absorb(chunk):
            yield sse.frame({"chunk": content})
    if state.error is not None:
        await stream.finish()
        yield sse.frame({"error": True, "message": f"Failed to stream response: {state.error}"})
        return
    usage = camel_usage(state.usage)
    if usage:
        yield sse.frame({"tokenUsage": usage})
    if state.tools.calls:
        yield sse.frame({"tool_calls": state.tools.result()})
    notes = camel_annotations(state.annotations)
    if notes:
        yield sse.frame({"annotations": notes})
    state.done = True
    await stream.finish()  # counted before the caller sees the end
    yield sse.frame({"done": True, **({"tokenUsage": usage} if usage else {})})


async def _delta_frames(stream: ChatStream) -> AsyncIterator[bytes]:
    """Upstream chunks → `{"choices": [{"delta": {"content"}}]}` frames, one per content delta.

    A content frame holds nothing else: the Kotlin SDK decodes each with a strict JSON reader
    that drops any frame with a key its model lacks (even `finish_reason`). The Swift SDK stops at
    the first frame with a `finish_reason` and treats a stream that ends without one (or without
    `[DONE]`) as truncated, so the finish frame comes last, after the tool calls, and a failed
    stream has neither.
    """
    state = stream.state
    async for chunk in stream.chunks():
        if chunk is None:
            yield KEEPALIVE
            continue
        for content in state.absorb(chunk):
            yield sse.frame({"choices": [{"delta": {"content": content}}]})
    if state.error is not None:
        await stream.finish()
        yield sse.frame({"error": True, "message": f"Failed to stream response: {state.error}"})
        return
    calls = state.tools.result() if state.tools.calls else []
    if calls:
        deltas = [{"index": i, **call} for i, call in enumerate(calls)]
        yield sse.frame({"choices": [{"delta": {"tool_calls": deltas}}]})
    state.done = True
    await stream.finish()  # counted before the caller sees the end
    finish: dict[str, Any] = {
        "model": state.served_model or stream.model,
        "choices": [{"delta": {}, "finish_reason": "tool_calls" if calls else state.finish_reason or "stop"}],
    }
    if state.usage is not None:
        u = state.usage
        finish["usage"] = {"prompt_tokens": u.prompt, "completion_tokens": u.completion, "total_tokens": u.total}
    yield sse.frame(finish)
    yield DONE_FRAME


def embeddings_body(answer: Answer[dict[str, Any]]) -> dict[str, Any]:
    """`metadata.model` is the model the upstream says served, usage in camelCase."""
    usage = Usage.read(answer.result.get("usage")) or Usage()
    return {
        "object": "list",
        "data": answer.result["data"],
        "metadata": {
            "model": served_model(answer.result, answer.model),
            "usage": {"promptTokens": usage.prompt, "totalTokens": usage.total},
        },
    }


IMAGES_NEXT_ACTIONS = "Each image is a data URL or a time-limited https URL: save it if you need it later."


def images_body(answer: Answer[Images]) -> dict[str, Any]:
    """Each image as `imageUrl` (JS, Swift) and `image_url.url` (Python, Kotlin); `model`, `count`,
    `metadata.usage` and `nextActions` are always present because the Kotlin SDK requires them."""
    images = answer.result
    out: dict[str, Any] = {"model": answer.model}
    if images.text is not None:
        out["text"] = images.text
    out["images"] = [{"type": "imageUrl", "imageUrl": url, "image_url": {"url": url}} for url in images.urls]
    out["count"] = len(images.urls)
    out["metadata"] = {"model": answer.model, "usage": camel_usage(images.usage) or _NO_USAGE}
    out["nextActions"] = IMAGES_NEXT_ACTIONS
    return out
