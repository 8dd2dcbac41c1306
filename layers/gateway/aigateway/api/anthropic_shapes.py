"""Anthropic's shapes for `POST /api/ai/v1/messages`: the `message` body and its event stream.

The upstream answers in OpenAI's shape (OpenRouter); this turns it into Anthropic's:
`content` blocks (`text`, `tool_use` with the arguments parsed into `input`), `stop_reason`
(`stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` → `tool_use`, a provider's
`stop_sequence` → `stop_sequence`, `content_filter` → `refusal`) and `usage` in input/output tokens.

A stream relays each upstream chunk the moment it arrives as Anthropic's named events:
`message_start`, then per block `content_block_start`, `content_block_delta` (`text_delta`, or
`input_json_delta` carrying the tool arguments as they come; `Blocks` says how interleaved tool
calls are kept apart), `content_block_stop`; a `ping` after the first block opens and for each
upstream keep-alive; then `message_delta` (stop reason, final usage) and `message_stop`. The
Anthropic SDKs skip a frame without an `event:` line, so every frame has one. A failure after the
stream started is one `event: error` frame (the SDKs raise on it) and the stream ends there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..flows.chat import ChatStream
from ..flows.common import Answer
from ..flows.stream_state import ToolCallAssembler
from ..usage import Usage
from .failures import error_body

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def event(name: str, payload: dict[str, Any]) -> bytes:
    """`event: <name>` and its JSON `data:` line: the frame shape Anthropic's SDKs parse."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


PING = event("ping", {"type": "ping"})


def message_id(request_id: str) -> str:
    """`msg_` + the gateway's request id: the id of the usage row and of the `x-request-id` header."""
    return f"msg_{request_id}"


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """Anthropic's usage object. `input_tokens` is the whole prompt, cached tokens included."""
    usage = usage or Usage()
    return {"input_tokens": usage.prompt, "output_tokens": usage.completion}


@dataclass(frozen=True)
class StopReason:
    """Why the answer ended, in Anthropic's words."""

    reason: str
    sequence: str | None = None


def stop_reason(finish: str | None, native_finish: Any, matched: Any, *, called_tools: bool) -> StopReason:
    """The stop reason for the upstream's `finish_reason`.

    OpenRouter reports a stop sequence as a plain `stop`; only the provider's own reason
    (`native_finish_reason: "stop_sequence"`, Anthropic's models) says a sequence ended the answer,
    and `stop_reason` names it when the provider tells which one.
    """
    if native_finish == "stop_sequence":
        return StopReason("stop_sequence", matched if isinstance(matched, str) else None)
    if finish is None:
        return StopReason("tool_use" if called_tools else "end_turn")
    return StopReason(_STOP_REASONS.get(finish, "end_turn"))


def _tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as Anthropic's `input` object ({} when they are not an object)."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def message_body(answer: Answer[dict[str, Any]]) -> dict[str, Any]:
    """The upstream answer as an Anthropic `message` (first choice: the gateway asks for one)."""
    upstream = answer.result
    choice = (upstream.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = message.get("content")
    if isinstance(text, list):  # a few providers answer in parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    calls = ToolCallAssembler()
    for i, tc in enumerate(message.get("tool_calls") or ()):
        if isinstance(tc, dict) and tc.get("type", "function") == "function":
            calls.add({**tc, "index": i})
    for call in calls.result():
        fn = call["function"]
        content.append(
            {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": _tool_input(fn["arguments"])}
        )
    stop = stop_reason(
        choice.get("finish_reason"),
        choice.get("native_finish_reason"),
        choice.get("stop_reason"),
        called_tools=bool(calls.calls),
    )
    return {
        "id": message_id(answer.request_id),
        "type": "message",
        "role": "assistant",
        "model": upstream.get("model") or answer.model,
        "content": content,
        "stop_reason": stop.reason,
        "stop_sequence": stop.sequence,
        "usage": anthropic_usage(Usage.read(upstream.get("usage"))),
    }


@dataclass
class Blocks:
    """The content blocks of a streamed message: Anthropic numbers them and one is open at a time.

    Upstream tool calls may interleave their fragments by `index` (OpenRouter relays what the
    provider sends), and Anthropic's blocks cannot. So text streams live until the first tool
    call; that call streams live and its block stays open until the upstream ends; text and
    further calls arriving after it are collected and sent whole, in order, at the end.
    """

    count: int = 0
    open: str | None = None  # "text" or "tool"
    live_tool: int | None = None  # the upstream index of the call streaming live
    held_text: list[str] = field(default_factory=list)
    held_tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    frames: list[bytes] = field(default_factory=list)
    _last_tool: int = -1

    @property
    def index(self) -> int:
        return self.count - 1

    def _start(self, kind: str, block: dict[str, Any]) -> None:
        self.close()
        self.count += 1
        self.open = kind
        self.frames.append(
            event("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block})
        )
        if self.count == 1:
            self.frames.append(PING)

    def _delta(self, delta: dict[str, Any]) -> None:
        self.frames.append(
            event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})
        )

    def _tool_block(self, call_id: str, name: str, arguments: str) -> None:
        self._start("tool", {"type": "tool_use", "id": call_id, "name": name, "input": {}})
        if arguments:
            self._delta({"type": "input_json_delta", "partial_json": arguments})

    def text(self, text: str) -> None:
        if self.open == "tool":
            self.held_text.append(text)
            return
        if self.open != "text":
            self._start("text", {"type": "text", "text": ""})
        self._delta({"type": "text_delta", "text": text})

    def tool(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = max(self._last_tool, 0)  # no index: the fragment continues the last call
        self._last_tool = index
        fn = fragment.get("function") or {}
        if self.live_tool is None:
            self.live_tool = index
            self._tool_block(fragment.get("id") or f"call_{index}", fn.get("name") or "", fn.get("arguments") or "")
        elif index == self.live_tool:
            if fn.get("arguments"):
                self._delta({"type": "input_json_delta", "partial_json": fn["arguments"]})
        else:
            self.held_tools.add({**fragment, "index": index})

    def close(self) -> None:
        if self.open is not None:
            self.frames.append(event("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.open = None

    def end(self) -> None:
        """Close the live block, then send what was held, each as one whole block."""
        self.close()
        if self.held_text:
            self._start("text", {"type": "text", "text": ""})
            self._delta({"type": "text_delta", "text": "".join(self.held_text)})
        for call in self.held_tools.result():
            self._tool_block(call["id"], call["function"]["name"], call["function"]["arguments"])
        self.close()

    def take(self) -> bytes:
        out = b"".join(self.frames)
        self.frames.clear()
        return out


def stream_error(message: str) -> bytes:
    """The mid-stream failure frame the Anthropic SDKs raise on: the error object failures.py
    renders for a 502 before the stream started."""
    failure = GatewayError(AI_UPSTREAM_UNAVAILABLE, 502, message)
    return event("error", {"type": "error", "error": error_body(failure, "anthropic")["error"]})


def _message_start(stream: ChatStream) -> bytes:
    message: dict[str, Any] = {
        "id": message_id(stream.request_id),
        "type": "message",
        "role": "assistant",
        "model": stream.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(None),  # known only at the end: sent again in message_delta
    }
    return event("message_start", {"type": "message_start", "message": message})


async def message_frames(stream: ChatStream) -> AsyncIterator[bytes]:
    """Upstream chunks → Anthropic's stream events, written as each chunk arrives."""
    state = stream.state
    blocks = Blocks()
    native_finish: Any = None
    matched: Any = None
    yield _message_start(stream)
    async for chunk in stream.chunks():
        if chunk is None:
            yield PING
            continue
        for text in state.absorb(chunk):
            blocks.text(text)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            for fragment in (choice.get("delta") or {}).get("tool_calls") or ():
                if isinstance(fragment, dict):
                    blocks.tool(fragment)
            native_finish = choice.get("native_finish_reason") or native_finish
            matched = choice.get("stop_reason") or matched
        if blocks.frames:
            yield blocks.take()
    if state.error is not None:
        await stream.finish()
        yield stream_error(f"Failed to stream response: {state.error}")
        return
    blocks.end()
    if blocks.frames:
        yield blocks.take()
    state.done = True
    await stream.finish()  # counted before the caller sees the end
    stop = stop_reason(state.finish_reason, native_finish, matched, called_tools=bool(state.tools.calls))
    delta = {"type": "message_delta", "delta": {"stop_reason": stop.reason, "stop_sequence": stop.sequence}}
    yield event("message_delta", {**delta, "usage": anthropic_usage(state.usage)}) + event(
        "message_stop", {"type": "message_stop"}
    )
