"""The Responses API's shapes for `/api/ai/v1/responses`: the `response` object and its stream events.

A finished chat completion becomes a `response` whose output items are the assistant message
(when it has text) and then one `function_call` item per tool call; its usage is the chat usage
in the Responses words. Nothing is stored, so every answer says `"store": false`.

A stream is OpenAI's typed events, each `event: <type>` + `data: {"type", "sequence_number", ...}`:
`response.created`, `response.in_progress`, then for each output item as it starts
`response.output_item.added` (+ `response.content_part.added` for the message) and its deltas
(`response.output_text.delta`, `response.function_call_arguments.delta`), relayed as each upstream
chunk arrives; at the end each item's closing events in output order (`response.output_text.done`
and `response.content_part.done`, or `response.function_call_arguments.done`; then
`response.output_item.done`), and last `response.completed` (`response.incomplete` when
`max_output_tokens` cut the answer) carrying the usage. A failure after the stream started is one
`error` event, which the OpenAI SDKs raise on, and nothing after it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..flows.chat import ChatStream
from ..flows.common import Answer
from ..usage import Usage
from .failures import error_body
from .openai_shapes import chat_body
from .responses import KEEPALIVE
from .responses_requests import NamedFunction, ResponsesRequest


def responses_usage(usage: Usage | None) -> dict[str, Any]:
    """The chat usage in the Responses shape (the details OpenAI's clients require, 0 when unknown)."""
    u = usage or Usage()
    cached = (u.details.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (u.details.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return {
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": cached if isinstance(cached, int) else 0},
        "output_tokens": u.completion,
        "output_tokens_details": {"reasoning_tokens": reasoning if isinstance(reasoning, int) else 0},
        "total_tokens": u.total,
    }


def output_annotations(chat_annotations: list[Any]) -> list[dict[str, Any]]:
    """OpenRouter's `url_citation` annotations in the Responses shape (flat); others are dropped."""
    out = []
    for note in chat_annotations:
        cite = note.get("url_citation") if isinstance(note, dict) else None
        if isinstance(cite, dict) and cite.get("url"):
            out.append(
                {
                    "type": "url_citation",
                    "url": cite["url"],
                    "title": cite.get("title") or "",
                    "start_index": cite.get("start_index") or 0,
                    "end_index": cite.get("end_index") or 0,
                }
            )
    return out


def incomplete_reason(finish_reason: str | None) -> str | None:
    """Why an answer stopped short, in the Responses words; None when it finished."""
    return {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish_reason or "")


def message_item(item_id: str, text: str, notes: list[dict[str, Any]], refusal: str | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text or not refusal:
        content.append({"type": "output_text", "text": text, "annotations": notes, "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "status": "completed", "role": "assistant", "content": content}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


@dataclass(frozen=True)
class ResponseHead:
    """What every rendering of one response repeats: its ids and the request's settings, echoed."""

    id: str
    created_at: int
    model: str
    req: ResponsesRequest

    @classmethod
    def of(cls, req: ResponsesRequest, request_id: str) -> ResponseHead:
        return cls(f"resp_{request_id}", int(time.time()), req.model, req)

    def message_id(self) -> str:
        return f"msg_{self.id.removeprefix('resp_')}"

    def call_id(self, index: int) -> str:
        return f"fc_{self.id.removeprefix('resp_')}_{index}"

    def body(
        self,
        *,
        status: str,
        output: list[dict[str, Any]],
        model: str | None = None,
        usage: Usage | None = None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        req = self.req
        reason = incomplete_reason(finish_reason) if status != "in_progress" else None
        fmt = req.text.format.model_dump(by_alias=True, exclude_none=True) if req.text and req.text.format else None
        choice = req.tool_choice
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": "incomplete" if reason else status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata or {},
            "model": model or self.model,
            "output": output,
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": req.reasoning.model_dump() if req.reasoning else None,
            "store": False,
            "temperature": req.temperature,
            "text": {"format": fmt or {"type": "text"}},
            "tool_choice": choice.model_dump() if isinstance(choice, NamedFunction) else (choice or "auto"),
            "tools": [t.model_dump() for t in req.tools or ()],
            "top_p": req.top_p,
            "truncation": "disabled",
            "usage": responses_usage(usage) if status != "in_progress" else None,
            "user": req.user,
        }
        if req.safety_identifier:
            body["safety_identifier"] = req.safety_identifier
        return body


def response_body(answer: Answer[dict[str, Any]], head: ResponseHead) -> dict[str, Any]:
    """The finished chat completion as a `response`: its message, then its function calls."""
    chat = chat_body(answer)
    choice = chat["choices"][0]
    message = choice["message"]
    output: list[dict[str, Any]] = []
    text = message.get("content") or ""
    if text or message.get("refusal"):
        output.append(
            message_item(
                head.message_id(), text, output_annotations(message.get("annotations") or []), message.get("refusal")
            )
        )
    for i, call in enumerate(message.get("tool_calls") or ()):
        fn = call["function"]
        output.append(function_call_item(head.call_id(i), call["id"], fn["name"], fn["arguments"]))
    if not output:  # nothing generated (e.g. max_output_tokens reached at once): an empty message
        output.append(message_item(head.message_id(), "", []))
    return head.body(
        status="completed",
        output=output,
        model=chat["model"],
        usage=Usage.read(answer.result.get("usage")),
        finish_reason=choice.get("finish_reason"),
    )


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
        elif not call.name and fn.get("name"):
            call.name = fn["name"]  # a provider that names the function after its first fragment
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
