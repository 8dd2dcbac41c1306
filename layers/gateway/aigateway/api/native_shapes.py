"""InsForge's own shapes (the `@insforge/sdk` dialect): chat bodies and `{"chunk"}` events, embeddings, images.

Chat answers carry `text` plus the keys older SDK versions read (`response`, `model`, `usage`);
usage is camelCase `{promptTokens, completionTokens, totalTokens}`. A stream is one
`data: {"chunk": "..."}` event per upstream content delta, then `tokenUsage`, `tool_calls` and
`annotations` events when there are any, then `{"done": true}`; a failure after the stream
started is one `{"error": true, "message"}` event and no `done`.
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
from .responses import KEEPALIVE


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
    body: dict[str, Any] = {"text": text}
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
    body["metadata"] = {"model": model, **({"usage": usage} if usage else {})}
    body["response"] = text
    body["model"] = model
    if usage:
        body["usage"] = usage
    return body


async def chat_frames(stream: ChatStream) -> AsyncIterator[bytes]:
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


def images_body(answer: Answer[Images]) -> dict[str, Any]:
    images = answer.result
    out: dict[str, Any] = {}
    if images.text is not None:
        out["text"] = images.text
    out["images"] = [{"type": "imageUrl", "imageUrl": url} for url in images.urls]
    metadata: dict[str, Any] = {"model": answer.model}
    if images.usage is not None:
        metadata["usage"] = camel_usage(images.usage)
    out["metadata"] = metadata
    return out
