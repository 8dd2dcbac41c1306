"""InsForge's own chat shapes (CONTRACT §3): the JSON body and the `{"chunk"}` SSE stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from .. import sse
from ..api.responses import JSON, SSEResponse
from ..credentials import ResolvedKey
from ..openrouter import UpstreamStream
from ..schemas import ChatRequest
from . import chat
from .common import CallContext, camel_usage, content_text, settle
from .stream_state import StreamState, ToolCallAssembler, upstream_chunks

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)
KEEPALIVE = sse.comment("keep-alive")
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


def camel_annotations(notes: list[Any]) -> list[dict[str, Any]]:
    """`url_citation` annotations with camelCase keys, as the SDK's schema has them."""
    out = []
    for n in notes:
        if not isinstance(n, dict) or n.get("type") != "url_citation":
            continue
        c = n.get("url_citation") or {}
        item = {"url": c.get("url")}
        for src, dst in (("title", "title"), ("content", "content"), ("start_index", "startIndex"),
                         ("end_index", "endIndex")):
            if c.get(src) is not None:
                item[dst] = c[src]
        out.append({"type": "url_citation", "urlCitation": item})
    return out




def completion_body(upstream: dict[str, Any], model: str) -> dict[str, Any]:
    """spec §4.4 plus the seed's `response`/`model`/`usage` keys (CONTRACT §3)."""
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
    usage = camel_usage(upstream.get("usage"))
    body["metadata"] = {"model": model, **({"usage": usage} if usage else {})}
    body["response"] = text
    body["model"] = model
    if usage:
        body["usage"] = usage
    return body


async def chat_completion(svc: Services, ctx: CallContext, req: ChatRequest) -> Response:
    prep = await chat.prepare(svc, ctx, req)
    if req.stream:
        stream, key = await chat.open_stream(svc, prep)
        state = StreamState()
        return SSEResponse(
            relay(stream, state),
            headers={**SSE_HEADERS, **prep.admission.headers},
            on_close=partial(finish_stream, svc, prep, stream, state, key),
        )
    upstream, key = await chat.complete(svc, prep)
    record = chat.usage_record(prep, key, served_model=upstream.get("model"), usage=upstream.get("usage"))
    return JSON(
        completion_body(upstream, prep.model),
        headers=prep.admission.headers,
        background=BackgroundTask(settle, svc, prep.admission, record),
    )


async def relay(stream: UpstreamStream, state: StreamState) -> AsyncIterator[bytes]:
    """Upstream chunks → `{"chunk"}` events, one per content delta, the moment each arrives."""
    async for chunk in upstream_chunks(stream, state):
        if chunk is None:
            yield KEEPALIVE  # upstream keep-alive: keeps proxies and clients from timing out
            continue
        for content in state.absorb(chunk):
            yield sse.frame({"chunk": content})
    if state.error is not None:
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
    yield sse.frame({"done": True, **({"tokenUsage": usage} if usage else {})})


async def finish_stream(
    svc: Services, prep: chat.PreparedChat, stream: UpstreamStream, state: StreamState, key: ResolvedKey
) -> None:
    """After the stream ended, failed, or the caller hung up: stop the upstream, record usage."""
    if state.done:
        await stream.release()  # relayed to the end: the connection can serve the next call
    else:
        stream.close()  # failed or abandoned: closing tells the upstream to stop generating
    record = chat.usage_record(
        prep, key, served_model=state.served_model, usage=state.usage, completion_chars=state.chars
    )
    if state.usage is None and state.chars == 0 and state.error is not None:
        return  # nothing was generated: an upstream failure before any token costs nothing
    await settle(svc, prep.admission, record)
