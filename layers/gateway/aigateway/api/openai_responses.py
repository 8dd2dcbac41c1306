"""`POST /api/ai/v1/responses`: OpenAI's Responses API over the chat flow, plain and streamed.

The request becomes a chat request (api/responses_shapes.py) and runs `flows.chat` like
`/api/ai/v1/chat/completions`, so auth, gating, the admin's system prompt, content policy,
limits, usage rows and cost are the chat ones; both answers are settled by api/responses.py
before their last byte. Served by the chat function (it streams): the front door sends
/api/ai/v1/responses* there.

A stream is OpenAI's typed events, each `event: <type>` + `data: {..., "sequence_number"}`:
`response.created`, `response.in_progress`, then per output item as it starts
`response.output_item.added` (+ `response.content_part.added` for the message) and its deltas
(`response.output_text.delta`, `response.function_call_arguments.delta`) relayed as each upstream
chunk arrives; at the end each item's closing events in output order (`response.output_text.done`,
`response.content_part.done` / `response.function_call_arguments.done`, `response.output_item.done`)
and `response.completed` (`response.incomplete` when cut by `max_output_tokens`) with the usage.
A failure after the stream started is one `error` event (which the OpenAI SDKs raise on) and nothing
after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..flows import chat
from ..flows.chat import ChatStream
from .deps import Svc, User, call_context
from .failures import error_body
from .responses import KEEPALIVE, answer_response, stream_response
from .responses_shapes import (
    ResponseHead,
    ResponsesRequest,
    function_call_item,
    message_item,
    output_annotations,
    response_body,
    to_native,
)

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.post("/responses")
async def create_response(body: ResponsesRequest, request: Request, svc: Svc, who: User) -> Response:
    native, extra = to_native(body)
    ctx = call_context(request, who)
    head = ResponseHead.of(body, ctx.request_id)
    if native.stream:
        stream = await chat.stream(svc, ctx, native, extra)
        return stream_response(stream, response_events(stream, head))
    answer = await chat.answer(svc, ctx, native, extra)
    return await answer_response(svc, answer, response_body(answer, head))


@dataclass
class _Text:
    """The assistant message being streamed (output item `index`)."""

    index: int
    id: str
    text: str = ""


@dataclass
class _Call:
    """One function call being streamed (output item `index`)."""

    index: int
    id: str
    call_id: str
    name: str
    arguments: str = ""


@dataclass
class _Events:
    """Numbers the events of one stream and keeps its output items in the order they started."""

    head: ResponseHead
    seq: int = 0
    text: _Text | None = None
    calls: dict[int, _Call] = field(default_factory=dict)  # by the upstream's tool-call index
    items: list[_Text | _Call] = field(default_factory=list)

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def open_text(self) -> list[bytes]:
        if self.text is not None:
            return []
        self.text = _Text(len(self.items), self.head.message_id())
        self.items.append(self.text)
        item = {"type": "message", "id": self.text.id, "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            self.event("response.output_item.added", output_index=self.text.index, item=item),
            self._text_event(self.text, "response.content_part.added", part=part),
        ]

    def on_text(self, delta: str) -> list[bytes]:
        out = self.open_text()
        assert self.text is not None
        self.text.text += delta
        out.append(self._text_event(self.text, "response.output_text.delta", delta=delta, logprobs=[]))
        return out

    def on_call(self, fragment: dict[str, Any]) -> list[bytes]:
        """One upstream tool-call fragment: its item opened on first sight, then its argument delta."""
        index = fragment.get("index")
        key = index if isinstance(index, int) else max(self.calls, default=0)
        fn = fragment.get("function") or {}
        out = []
        call = self.calls.get(key)
        if call is None:
            call_id = fragment.get("id") or f"call_{key}"
            call = _Call(len(self.items), self.head.call_id(key), call_id, fn.get("name") or "")
            self.calls[key] = call
            self.items.append(call)
            item = function_call_item(call.id, call.call_id, call.name, "", "in_progress")
            out.append(self.event("response.output_item.added", output_index=call.index, item=item))
        delta = fn.get("arguments")
        if isinstance(delta, str) and delta:
            call.arguments += delta
            fields = {"item_id": call.id, "output_index": call.index, "delta": delta}
            out.append(self.event("response.function_call_arguments.delta", **fields))
        return out

    def _text_event(self, item: _Text, kind: str, **fields: Any) -> bytes:
        return self.event(kind, item_id=item.id, output_index=item.index, content_index=0, **fields)

    def close(self, notes: list[dict[str, Any]]) -> tuple[list[bytes], list[dict[str, Any]]]:
        """Each item's closing events in output order, and the finished items for the final response."""
        frames: list[bytes] = []
        output: list[dict[str, Any]] = []
        for entry in self.items:
            if isinstance(entry, _Text):
                item = message_item(entry.id, entry.text, notes)
                frames.append(self._text_event(entry, "response.output_text.done", text=entry.text, logprobs=[]))
                frames.append(self._text_event(entry, "response.content_part.done", part=item["content"][0]))
            else:
                item = function_call_item(entry.id, entry.call_id, entry.name, entry.arguments)
                fields = {"item_id": entry.id, "output_index": entry.index, "name": entry.name}
                frames.append(self.event("response.function_call_arguments.done", arguments=entry.arguments, **fields))
            frames.append(self.event("response.output_item.done", output_index=entry.index, item=item))
            output.append(item)
        return frames, output


async def response_events(stream: ChatStream, head: ResponseHead) -> AsyncIterator[bytes]:
    """Upstream chunks → Responses events, relayed as each chunk arrives; settled before the last."""
    events = _Events(head)
    state = stream.state
    yield events.event("response.created", response=head.body(status="in_progress", output=[]))
    yield events.event("response.in_progress", response=head.body(status="in_progress", output=[]))
    async for chunk in stream.chunks():
        if chunk is None:
            yield KEEPALIVE
            continue
        for delta in state.absorb(chunk):
            for frame in events.on_text(delta):
                yield frame
        for choice in chunk.get("choices") or ():
            fragments = (choice.get("delta") or {}).get("tool_calls") if isinstance(choice, dict) else None
            for fragment in fragments or ():
                if isinstance(fragment, dict):
                    for frame in events.on_call(fragment):
                        yield frame
    if state.error is not None:
        await stream.finish()
        failure = GatewayError(AI_UPSTREAM_UNAVAILABLE, 502, f"Failed to stream response: {state.error}")
        err = error_body(failure, "openai")["error"]
        yield events.event("error", code=err["code"], message=err["message"], param=None, error=err)
        return
    if not events.items:  # nothing generated: still one (empty) message, as the plain answer has
        for frame in events.open_text():
            yield frame
    frames, output = events.close(output_annotations(state.annotations))
    for frame in frames:
        yield frame
    state.done = True
    await stream.finish()  # counted before the caller sees the end
    final = head.body(
        status="completed",
        output=output,
        model=state.served_model or stream.model,
        usage=state.usage,
        finish_reason=state.finish_reason,
    )
    kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
    yield events.event(kind, response=final)
